# Prometheus for the compose test: Debian's prometheus binary with the
# shared libraries it loads, on scratch, started as the official image
# starts it (config in /etc/prometheus, data in /prometheus, which the
# compose file's user 65534 owns).
FROM scratch
COPY rootfs/ /
COPY --chown=65534:65534 owned/ /
WORKDIR /prometheus
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
