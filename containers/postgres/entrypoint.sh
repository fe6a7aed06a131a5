#!/bin/sh
# First start: make the cluster in the volume, with a role and a database for renlian whose
# password comes from POSTGRES_PASSWORD_FILE (a mounted file) or POSTGRES_PASSWORD (the
# environment), never from the image. Every start: run PostgreSQL in the foreground as PID 1.
set -eu

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
        password=$(cat "$POSTGRES_PASSWORD_FILE")
    else
        password=${POSTGRES_PASSWORD:-}
    fi
    if [ -z "$password" ]; then
        echo "renlian-postgres: set POSTGRES_PASSWORD_FILE or POSTGRES_PASSWORD for the first start" >&2
        exit 1
    fi
    # The superuser logs in only over the container's own socket, as the postgres user (peer);
    # everything over TCP needs a password (scram-sha-256).
    initdb --pgdata="$PGDATA" --username=postgres --auth-local=peer --auth-host=scram-sha-256 \
        --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    # Single-user mode, before anything listens: no client can see a half-made database. The
    # password travels on standard input (not in a process's arguments), quoted as SQL wants.
    quoted=$(printf '%s' "$password" | sed "s/'/''/g")
    printf "CREATE ROLE \"%s\" LOGIN PASSWORD '%s'\n" "$POSTGRES_USER" "$quoted" \
        | postgres --single -D "$PGDATA" postgres >/dev/null
    printf 'CREATE DATABASE "%s" OWNER "%s"\n' "$POSTGRES_DB" "$POSTGRES_USER" \
        | postgres --single -D "$PGDATA" postgres >/dev/null
    unset password quoted
    echo "renlian-postgres: made the cluster, role $POSTGRES_USER and database $POSTGRES_DB" >&2
fi

exec postgres -D "$PGDATA" -c listen_addresses="$POSTGRES_LISTEN" -c port="$PGPORT"
