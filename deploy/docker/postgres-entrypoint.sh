#!/bin/bash
# Entrypoint of Kitteh's database image: on the first start (an empty data directory) it
# creates the cluster from POSTGRES_USER (default postgres), POSTGRES_PASSWORD (required) and
# POSTGRES_DB (default: the user's name), as the official postgres image does; then it runs
# the command, postgres, as PID 1. An existing cluster is never touched.
set -euo pipefail

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    : "${POSTGRES_PASSWORD:?is required to create the database (set it in .env)}"
    user=${POSTGRES_USER:-postgres}
    database=${POSTGRES_DB:-$user}
    # The password is read from a pipe, never from the command line (ps would show it).
    # UTF-8 with the C.UTF-8 locale: byte-order collation, the same on every machine.
    initdb --pgdata="$PGDATA" --username="$user" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
        --encoding=UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    # Other containers connect over the network, with the password.
    printf "listen_addresses = '*'\n" >> "$PGDATA/postgresql.conf"
    printf 'host all all all scram-sha-256\n' >> "$PGDATA/pg_hba.conf"
    if [ "$database" != postgres ]; then
        # Single-user mode: no server, so nobody can connect before the database exists.
        printf 'CREATE DATABASE "%s";\n' "${database//\"/\"\"}" \
            | postgres --single -j -D "$PGDATA" postgres >/dev/null
    fi
    echo "kitteh-postgres-entrypoint: created the cluster, user $user, database $database"
fi
exec "$@"
