#!/usr/bin/env bash
# A throw-away PostgreSQL cluster for the tests: trust auth, 127.0.0.1 only, a free port, fsync off.
#   scripts/pg.sh start DIR   initialise and start a cluster in DIR (new or empty), print its URL
#   scripts/pg.sh stop DIR    stop it and delete DIR
# IDPROOF_PG_DURABLE=1 keeps fsync and full-page writes on (for benchmark figures a production store would see).
# Never point it at a real cluster: `stop` deletes DIR. Uses initdb/pg_ctl from PATH, else Debian's
# /usr/lib/postgresql/*/bin (installing the `postgresql` package when run as root). initdb refuses to run
# as root, so as root the cluster runs as the `postgres` system user (created if missing).
set -euo pipefail

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1
dir=$2
MARK=.idproof-throwaway-pg  # `stop` deletes only a directory that `start` made

die() { echo "pg.sh: $*" >&2; exit 1; }

pg_bin() {
  local d
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(readlink -f "$(command -v initdb)")"
    return 0
  fi
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
  return 1
}

as_pg() {  # run a command as the cluster's owner
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
  local bin port try
  if ! bin=$(pg_bin); then
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
      || die "initdb/pg_ctl not found; install PostgreSQL (Debian: sudo apt-get install postgresql)"
    echo "pg.sh: installing Debian's postgresql" >&2
    { apt-get install -y -q --no-install-recommends postgresql >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends postgresql >/dev/null; }; } \
      || die "apt-get install postgresql failed"
    bin=$(pg_bin) || die "postgresql installed, but no initdb/pg_ctl under /usr/lib/postgresql/*/bin"
  fi
  case $dir in *[[:space:]]*) die "DIR must not contain spaces: $dir" ;; esac
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  [ -z "$(ls -A "$dir")" ] || die "$dir is not empty"
  touch "$dir/$MARK"
  if [ "$(id -u)" = 0 ]; then
    id -u postgres >/dev/null 2>&1 \
      || useradd --system --user-group --home-dir /var/lib/postgresql --shell /usr/sbin/nologin postgres \
      || die "cannot create the postgres system user"
    chown -R postgres: "$dir"
    as_pg test -w "$dir" || die "the postgres user cannot write $dir (a parent directory is not searchable); use a directory under /tmp"
  fi
  as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  # A random free port; retried because another process may take it between the check and the start.
  for try in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue  # something already listens there
    # fsync off: a test cluster is thrown away, it never has to survive a power cut
    local durability="-c fsync=off -c full_page_writes=off"
    [ "${IDPROOF_PG_DURABLE:-0}" = 1 ] && durability=""
    if as_pg "$bin/pg_ctl" start -D "$dir/data" -l "$dir/server.log" -w -t 60 -o \
      "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir $durability -c max_connections=200" \
      >/dev/null 2>&1; then
      echo "$port" >"$dir/port"
      echo "postgresql://postgres@127.0.0.1:$port/postgres"
      return 0
    fi
  done
  cat "$dir/server.log" >&2 2>/dev/null || true
  die "the PostgreSQL server did not start (log above)"
}

stop() {
  [ -d "$dir" ] || return 0
  [ -f "$dir/$MARK" ] || die "$dir was not made by '$0 start'; not touching it"
  local bin
  if [ -f "$dir/data/postmaster.pid" ] && bin=$(pg_bin); then
    as_pg "$bin/pg_ctl" stop -D "$dir/data" -m fast -w -t 30 >/dev/null 2>&1 \
      || as_pg "$bin/pg_ctl" stop -D "$dir/data" -m immediate -w -t 30 >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
}

case $cmd in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
