# Kitteh's database: PostgreSQL 17 from Debian trixie, on debian:trixie-slim like every other
# Kitteh image. It keeps what compose.yaml relied on in the official postgres image:
# POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB create the cluster on first start (UTF-8),
# the server runs as a non-root user, SIGINT stops it gracefully (a fast shutdown).
#
#   docker build -f deploy/docker/postgres.Dockerfile -t kitteh-db .
FROM debian:trixie-slim

# A fixed uid/gid (the official image's 999), created before the packages so that they use
# it: the data volume keeps its owner across rebuilds.
RUN groupadd --system --gid 999 postgres \
 && useradd --system --uid 999 --gid postgres --home-dir /var/lib/postgresql \
        --shell /bin/bash postgres

# postgresql-common is told (in a drop-in it reads) not to create a "main" cluster: the
# entrypoint creates the one cluster, in the volume, from POSTGRES_*. The server's major
# version is in the package name; minor releases (bug and security fixes) come on rebuild.
RUN mkdir -p /etc/postgresql-common/createcluster.d \
 && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/kitteh.conf \
 && apt-get update \
 && apt-get install -y --no-install-recommends postgresql-17=17.* \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -o postgres -g postgres -m 700 /var/lib/postgresql/data

ENV PATH=/usr/lib/postgresql/17/bin:$PATH \
    PGDATA=/var/lib/postgresql/data
COPY --chmod=755 deploy/docker/postgres-entrypoint.sh /usr/local/bin/kitteh-postgres-entrypoint
# Numeric, so the runtime can verify it is not root.
USER 999:999
ENTRYPOINT ["kitteh-postgres-entrypoint"]
# Exec form, through the entrypoint's exec: postgres is PID 1 and gets the stop signal.
CMD ["postgres"]
STOPSIGNAL SIGINT
EXPOSE 5432
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["pg_isready", "-h", "127.0.0.1", "-q"]
