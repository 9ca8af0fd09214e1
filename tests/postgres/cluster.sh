#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the ledger tests: initdb in DIR, a Unix socket in DIR,
# TCP on 127.0.0.1 with TLS (a CA and server certificate made here) and a password.
#   cluster.sh start DIR   prints the Unix-socket URL; DIR/tls-url holds the TLS one
#   cluster.sh stop DIR    stops it and removes DIR
# As root, the server runs as the `postgres` user (PostgreSQL refuses root).
set -euo pipefail
cmd=${1:?usage: cluster.sh start|stop DIR}
dir=${2:?usage: cluster.sh start|stop DIR}

bin=""
for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && bin=$d; done
[ -n "$bin" ] || bin=$(dirname "$(command -v initdb || echo /nonexistent/initdb)")
[ -x "$bin/initdb" ] || { echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 3; }

as_owner() {
  if [ "$(id -u)" = 0 ]; then setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; else "$@"; fi
}

case $cmd in
start)
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
  as_owner "$bin/initdb" -D "$dir/data" -U agent_replay --auth-local=trust --auth-host=scram-sha-256 \
    --no-sync -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  # TLS: a CA of this cluster and a server certificate for 127.0.0.1 / localhost.
  (cd "$dir" && openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=agent-replay test CA" \
      -keyout ca.key -out ca.crt >/dev/null 2>&1 \
    && openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr >/dev/null 2>&1 \
    && printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >san.ext \
    && openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -extfile san.ext -out server.crt >/dev/null 2>&1)
  cp "$dir/server.crt" "$dir/server.key" "$dir/data/"
  chmod 600 "$dir/data/server.key"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir/data/server.crt" "$dir/data/server.key"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
ssl = on
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 100
shared_buffers = 256MB
CONF
  # TCP only over TLS, with a password; the socket trusts its local user.
  cat >"$dir/data/pg_hba.conf" <<HBA
local all all trust
hostssl all all 127.0.0.1/32 scram-sha-256
HBA
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
    || { cat "$dir/server.log" >&2; exit 1; }
  as_owner "$bin/psql" -h "$dir" -p "$port" -U agent_replay -d postgres -qc \
    "ALTER USER agent_replay PASSWORD 'pg-test-secret'" >/dev/null
  enc=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$dir")
  echo "postgres://agent_replay@$enc:$port/postgres" >"$dir/url"
  echo "postgres://agent_replay:pg-test-secret@127.0.0.1:$port/postgres?sslmode=require&sslrootcert=$dir/ca.crt" >"$dir/tls-url"
  cat "$dir/url"
  ;;
stop)
  if [ -d "$dir/data" ]; then as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true; fi
  rm -rf "$dir"
  ;;
*) echo "usage: cluster.sh start|stop DIR" >&2; exit 2 ;;
esac
