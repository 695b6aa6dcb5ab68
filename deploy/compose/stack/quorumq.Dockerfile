# The quorumq image of the compose test: the statically built binary and
# Debian's statically linked busybox (the sh, awk, head and base64 the
# compose file's certs and tool scripts use) on scratch, so nothing is
# pulled. Users build deploy/Dockerfile instead; this one mirrors what the
# compose file relies on in it: user 10001, /data and /certs owned by it,
# QUORUMQ_DATA_DIR, the entrypoint and the default command.
FROM scratch
COPY rootfs/ /
COPY --chown=10001:10001 owned/ /
ENV PATH=/usr/local/bin:/bin QUORUMQ_DATA_DIR=/data
WORKDIR /data
USER 10001:10001
ENTRYPOINT ["quorumq"]
CMD ["serve"]
