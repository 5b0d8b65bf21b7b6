#!/usr/bin/env bash
# start-ring.sh: start every server of a servers.txt on this machine, show
# that the ring works, and leave it running.
#
#   done/start-ring.sh [start] [--tls] [SERVERS_FILE]
#                                               start the ring (default ./servers.txt)
#   done/start-ring.sh stop                     stop it (SIGTERM, clean shutdown)
#   done/start-ring.sh status                   show which servers answer
#
# With --tls (make ring-tls) the ring is a secure one: it speaks TLS only,
# with a CA and one certificate per server made in run/certs (dkvs-client
# certs, kept and reused when there) and a client certificate "admin";
# servers talk mutual TLS to each other; and they admit only users of
# run/certs/users.txt, where a user "admin" has every right, its token in
# run/certs/admin.token. The client commands shown use --tls-ca, --user
# and --token-file.
# Data and logs go to $DKVS_RUN_DIR (default ./run): run/data-IP-PORT/ and
# run/IP-PORT.log. Only lines whose IP is an address of this machine are
# started. Extra dkvs-server options can be passed in $DKVS_SERVER_OPTS.
# With $DKVS_RESP_OFFSET (e.g. 1000) every server also serves the Redis
# protocol on its port plus that offset (7001 -> 8001).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cmd=${1:-start}
case "$cmd" in start|stop|status) shift || true ;; *) cmd=start ;; esac
tls=
if [ "${1:-}" = --tls ]; then tls=1; shift; fi
servers=${1:-servers.txt}
run=${DKVS_RUN_DIR:-run}
client="$here/dkvs-client"
certs=$run/certs

[ -f "$servers" ] || { echo "start-ring: no servers file $servers" >&2; exit 129; }
mkdir -p "$run"
servers=$(cd "$(dirname "$servers")" && pwd)/$(basename "$servers")
# The client's options: --tls-ca once the ring was started with --tls
# (run/tls says so, for status).
ctls=()
if [ "$cmd" = start ]; then
  if [ -n "$tls" ]; then touch "$run/tls"; else rm -f "$run/tls"; fi
fi
if [ -f "$run/tls" ]; then
  tls=1
  ctls=(--tls-ca "$certs/ca.pem" --user admin --token-file "$certs/admin.token")
fi

local_ip() {
  [ "$1" = 127.0.0.1 ] && return 0
  ip -4 -o addr show 2>/dev/null | grep -q " $1/" 
}

case "$cmd" in
stop)
  for pidf in "$run"/*.pid; do
    [ -e "$pidf" ] || continue
    pid=$(cat "$pidf")
    if kill -TERM "$pid" 2>/dev/null; then
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      echo "stopped $(basename "$pidf" .pid) (pid $pid)"
    fi
    rm -f "$pidf"
  done
  exit 0 ;;
status)
  "$client" "${ctls[@]}" --servers "$servers" status 2>/dev/null || "$client" "${ctls[@]}" --servers "$servers" dump-ring
  exit 0 ;;
esac

if [ -n "$tls" ]; then
  # A certificate for each server of the file (the CA is kept if there).
  "$client" --servers "$servers" certs --out "$certs" --client admin >/dev/null
  echo "certificates in $certs (CA $certs/ca.pem; client admin: $certs/client-admin.pem)"
  # A user with every right; its token is printed once, into a file only
  # its owner reads.
  if [ ! -s "$certs/admin.token" ] || [ ! -s "$certs/users.txt" ]; then
    (umask 077; "$client" user add --users "$certs/users.txt" --rights read,write,admin -- admin \
      >"$certs/admin.token" 2>/dev/null)
  fi
  echo "users in $certs/users.txt (user admin, token in $certs/admin.token)"
fi

started=0
while read -r ip port count _; do
  [ -n "${ip:-}" ] || continue
  local_ip "$ip" || { echo "skip $ip:$port (not an address of this machine)"; continue; }
  name="$ip-$port"
  if [ -f "$run/$name.pid" ] && kill -0 "$(cat "$run/$name.pid")" 2>/dev/null; then
    echo "$ip:$port already running (pid $(cat "$run/$name.pid"))"
    continue
  fi
  resp=()
  if [ -n "${DKVS_RESP_OFFSET:-}" ]; then
    resp=(--resp "$ip:$((port + DKVS_RESP_OFFSET))")
  fi
  stls=()
  if [ -n "$tls" ]; then
    stls=(--tls-ca "$certs/ca.pem" --tls-cert "$certs/server-$ip-$port.pem" --tls-key "$certs/server-$ip-$port-key.pem"
      --users "$certs/users.txt")
  fi
  # shellcheck disable=SC2086
  "$here/dkvs-server" --servers "$servers" --data-dir "$run/data-$name" "${resp[@]}" "${stls[@]}" ${DKVS_SERVER_OPTS:-} \
    "$ip" "$port" >>"$run/$name.log" 2>&1 &
  echo $! > "$run/$name.pid"
  echo "started $ip:$port${resp:+ (RESP on ${resp[1]})} (COUNT $count, pid $!, log $run/$name.log)"
  started=$((started + 1))
done < "$servers"

# Wait until every server answers. One that exits at start (a port in use,
# a data directory it refuses) is reported with the end of its log, and the
# others are stopped: a ring half up would only confuse what follows.
for _ in $(seq 100); do
  for pidf in "$run"/*.pid; do
    [ -e "$pidf" ] || continue
    kill -0 "$(cat "$pidf")" 2>/dev/null && continue
    name=$(basename "$pidf" .pid)
    rm -f "$pidf"
    echo "start-ring: dkvs-server $name exited at start; the end of $run/$name.log:" >&2
    tail -n 3 "$run/$name.log" >&2
    DKVS_RUN_DIR="$run" "$0" stop
    exit 1
  done
  if "$client" "${ctls[@]}" --servers "$servers" --timeout 200ms dump >/dev/null 2>&1; then break; fi
  sleep 0.1
done

echo
echo "== the ring at work =="
set -x
"$client" "${ctls[@]}" --servers "$servers" put -- hello world
"$client" "${ctls[@]}" --servers "$servers" get -- hello
"$client" "${ctls[@]}" --servers "$servers" put -n 3 -w 2 -- greeting "hello from dkvs"
"$client" "${ctls[@]}" --servers "$servers" get -r 2 -- greeting
"$client" "${ctls[@]}" --servers "$servers" dump-ring
set +x
if [ -n "$tls" ]; then
  echo
  echo "== a client without the CA is refused =="
  "$client" --servers "$servers" --connect-retry 0 get -- hello 2>&1 >/dev/null | head -c 300 || true
  echo
  echo "== a client without a token is refused =="
  "$client" --tls-ca "$certs/ca.pem" --servers "$servers" get -- hello 2>&1 >/dev/null | head -c 300 || true
  echo
fi
echo "The ring keeps running. Try: $client ${ctls[*]} --servers $servers get -- hello"
echo "Stop it with: make stop-ring   (or $0 stop)"
