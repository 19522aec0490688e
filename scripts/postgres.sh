#!/usr/bin/env bash
# A throwaway PostgreSQL on 127.0.0.1 for the tests: sourced by scripts/test.sh
# (`source scripts/postgres.sh`), it installs Debian's postgresql when missing,
# runs initdb as an unprivileged user (PostgreSQL refuses root) in a fresh
# directory, starts the server on a free port, creates a database, exports
# HOOKSERVER_TEST_POSTGRES, and stops the server and removes the directory on exit.
# An existing HOOKSERVER_TEST_POSTGRES is left alone (a developer's own server).
# Run it directly to get a server for a shell: `bash scripts/postgres.sh --shell`.

if [[ -n "${HOOKSERVER_TEST_POSTGRES:-}" ]]; then
    echo "postgres.sh: using HOOKSERVER_TEST_POSTGRES from the environment" >&2
    return 0 2>/dev/null || exit 0
fi

pg_bindir() {
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        [[ -x "$dir/initdb" ]] && echo "$dir"
    done | sort -V | tail -1
}

if [[ -z "$(pg_bindir)" ]]; then
    echo "postgres.sh: installing PostgreSQL (Debian's postgresql package)" >&2
    if [[ $(id -u) -ne 0 ]]; then
        echo "postgres.sh: PostgreSQL is not installed and this is not root: install the postgresql package, or set HOOKSERVER_TEST_POSTGRES" >&2
        return 1 2>/dev/null || exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi
PG_BIN="$(pg_bindir)"

# PostgreSQL's server refuses to run as root: as root, run it as the `postgres`
# user the package creates (or a system user of our own when it is missing).
PG_USER="$(id -un)"
if [[ $(id -u) -eq 0 ]]; then
    PG_USER=postgres
    id -u "$PG_USER" >/dev/null 2>&1 || useradd --system --no-create-home "$PG_USER"
fi
as_pg() {
    if [[ "$(id -un)" == "$PG_USER" ]]; then "$@"; else runuser -u "$PG_USER" -- "$@"; fi
}

PG_DIR="$(mktemp -d /tmp/hookserver-pg.XXXXXX)"
chown "$PG_USER" "$PG_DIR"
PG_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -U hookserver --auth=trust -E UTF8 --no-locale >"$PG_DIR/initdb.log" 2>&1 || {
    cat "$PG_DIR/initdb.log" >&2
    return 1 2>/dev/null || exit 1
}
cat >>"$PG_DIR/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_DIR'
max_connections = 400
fsync = on
CONF
as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 start >/dev/null || {
    cat "$PG_DIR/server.log" >&2
    return 1 2>/dev/null || exit 1
}

hookserver_pg_stop() {
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
}
trap hookserver_pg_stop EXIT

as_pg "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U hookserver hookserver_test
export HOOKSERVER_TEST_POSTGRES="postgres://hookserver:hookserver@127.0.0.1:$PG_PORT/hookserver_test"
# For the tests that stop and start the server itself.
export HOOKSERVER_TEST_POSTGRES_CTL="$PG_BIN/pg_ctl -D $PG_DIR/data -l $PG_DIR/server.log"
export HOOKSERVER_TEST_POSTGRES_USER="$PG_USER"
echo "postgres.sh: PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT (data in $PG_DIR)" >&2

if [[ "${1:-}" == "--shell" ]]; then
    echo "HOOKSERVER_TEST_POSTGRES=$HOOKSERVER_TEST_POSTGRES; exit the shell to stop it" >&2
    "${SHELL:-bash}"
fi
