#!/usr/bin/env bash
# start-ring.sh: start every server of a servers.txt on this machine, show
# that the ring works, and leave it running.
#
#   done/start-ring.sh [start] [SERVERS_FILE]   start the ring (default ./servers.txt)
#   done/start-ring.sh stop                     stop it (SIGTERM, clean shutdown)
#   done/start-ring.sh status                   show which servers answer
#
# Data and logs go to $DKVS_RUN_DIR (default ./run): run/data-IP-PORT/ and
# run/IP-PORT.log. Only lines whose IP is an address of this machine are
# started. Extra dkvs-server options can be passed in $DKVS_SERVER_OPTS.
# With $DKVS_RESP_OFFSET (e.g. 1000) every server also serves the Redis
# protocol on its port plus that offset (7001 -> 8001).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cmd=${1:-start}
case "$cmd" in start|stop|status) shift || true ;; *) cmd=start ;; esac
servers=${1:-servers.txt}
run=${DKVS_RUN_DIR:-run}
client="$here/dkvs-client"

[ -f "$servers" ] || { echo "start-ring: no servers file $servers" >&2; exit 129; }
mkdir -p "$run"
servers=$(cd "$(dirname "$servers")" && pwd)/$(basename "$servers")

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
  "$client" --servers "$servers" status 2>/dev/null || "$client" --servers "$servers" dump-ring
  exit 0 ;;
esac

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
  # shellcheck disable=SC2086
  "$here/dkvs-server" --servers "$servers" --data-dir "$run/data-$name" "${resp[@]}" ${DKVS_SERVER_OPTS:-} "$ip" "$port" \
    >>"$run/$name.log" 2>&1 &
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
  if "$client" --servers "$servers" --timeout 200ms dump >/dev/null 2>&1; then break; fi
  sleep 0.1
done

echo
echo "== the ring at work =="
set -x
"$client" --servers "$servers" put -- hello world
"$client" --servers "$servers" get -- hello
"$client" --servers "$servers" put -n 3 -w 2 -- greeting "hello from dkvs"
"$client" --servers "$servers" get -r 2 -- greeting
"$client" --servers "$servers" dump-ring
set +x
echo "The ring keeps running. Try: $client --servers $servers get -- hello"
echo "Stop it with: make stop-ring   (or $0 stop)"
