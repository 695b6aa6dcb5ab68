# Redis for the compose test: Debian's redis-server and redis-cli (the
# compose file's healthcheck) with the shared libraries they load, and
# busybox for the entrypoint, on scratch. As in the official image: data
# in /data, and without a config file protected mode is off (else Redis
# would refuse the other containers).
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/bin:/bin
WORKDIR /data
ENTRYPOINT ["/bin/sh", "/usr/local/bin/docker-entrypoint.sh"]
CMD ["redis-server"]
