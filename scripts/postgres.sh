#!/usr/bin/env bash
# Starts (or stops) a throwaway PostgreSQL server for the tests, on loopback, in a temporary
# directory. `start` prints the admin URL the tests take from COUNTERSIGN_TEST_POSTGRES.
#   scripts/postgres.sh start DIR PORT   ->  prints postgres://postgres@127.0.0.1:PORT/postgres
#   scripts/postgres.sh stop DIR
set -euo pipefail

bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; return; fi
  dirname "$(command -v initdb)"
}

# PostgreSQL refuses to run as root; run it as the `postgres` system user then.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

cmd=${1:?start or stop}
dir=${2:?data directory}
case "$cmd" in
  start)
    port=${3:?port}
    bin=$(bindir)
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
    as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    # fsync off: the tests' database is thrown away; durability is tested on SQLite and by design.
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=400" start >/dev/null \
      || { cat "$dir/server.log" >&2; exit 1; }
    echo "postgres://postgres@127.0.0.1:$port/postgres"
    ;;
  stop)
    bin=$(bindir)
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
  *) echo "usage: $0 start DIR PORT | stop DIR" >&2; exit 2 ;;
esac
