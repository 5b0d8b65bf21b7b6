#!/usr/bin/env bash
# redis-compare.sh: redis-benchmark against dkvs's Redis-protocol port and
# against a redis-server, on this machine, with the same commands.
#
#   tests/redis-compare.sh            (or: make bench-redis)
#
# It starts, on free ports of 127.0.0.1:
#   - redis-server with no persistence (no RDB, no AOF);
#   - dkvs at N=1: one dkvs-server (--resp-n 1 --resp-r 1 --resp-w 1);
#   - dkvs at N=3, W=2, R=2: three dkvs-servers, the benchmark talking to
#     the RESP port of one of them, which coordinates;
# and runs `redis-benchmark -t set,get -n REQUESTS -c CLIENTS` on each,
# without and with pipelining (-P 16). dkvs servers keep their data in
# Pebble with synced writes (the default) unless DKVS_ARGS says otherwise
# (e.g. DKVS_ARGS=--memory). Every process it started is stopped on exit,
# whatever happens. Environment: REQUESTS (200000), CLIENTS (50),
# PIPELINE (16), DKVS_ARGS (empty), BIN (done).
set -euo pipefail
cd "$(dirname "$0")/.."

REQUESTS=${REQUESTS:-200000}
CLIENTS=${CLIENTS:-50}
PIPELINE=${PIPELINE:-16}
DKVS_ARGS=${DKVS_ARGS:-}
BIN=${BIN:-done}

die() { echo "redis-compare: $*" >&2; exit 1; }

missing=()
command -v redis-benchmark >/dev/null || missing+=(redis-tools)
command -v redis-server >/dev/null || missing+=(redis-server)
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "missing ${missing[*]}: apt-get install ${missing[*]}"
  apt-get update >/dev/null
  # The package starts a system service on port 6379: keep it off.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
fi
[ -x "$BIN/dkvs-server" ] || die "$BIN/dkvs-server not built (run make)"

work=$(mktemp -d "${TMPDIR:-/tmp}/redis-compare.XXXXXX")
pids=()
cleanup() {
  local status=$?
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# free_port (sets PORT) is in tests/lib/ports.sh.
. tests/lib/ports.sh

# wait_resp waits until PORT answers PING or its process exits.
wait_resp() {
  local port=$1 pid=$2 log=$3
  for _ in $(seq 200); do
    if [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ]; then return 0; fi
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; die "server on $port exited"; }
    sleep 0.05
  done
  cat "$log" >&2
  die "nothing answers on $port"
}

# start_redis sets RPORT to the port of a new redis-server.
start_redis() {
  free_port
  RPORT=$PORT
  redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$work" --daemonize no --loglevel warning >"$work/redis.log" 2>&1 &
  pids+=($!)
  wait_resp "$RPORT" $! "$work/redis.log"
}

# start_dkvs N COUNT: COUNT servers at replication N (R and W: N=1 → 1,
# else 2); sets DPORT to the RESP port of the first.
start_dkvs() {
  local n=$1 count=$2 dir="$work/dkvs-$1-$2" i ports=() resp=()
  mkdir -p "$dir"
  for i in $(seq "$count"); do
    free_port; ports+=("$PORT")
    free_port; resp+=("$PORT")
  done
  : >"$dir/servers.txt"
  for p in "${ports[@]}"; do echo "127.0.0.1 $p 4" >>"$dir/servers.txt"; done
  local q=$((n < 2 ? n : 2))
  for i in $(seq 0 $((count - 1))); do
    # shellcheck disable=SC2086
    "$BIN/dkvs-server" --servers "$dir/servers.txt" --data-dir "$dir/data-$i" \
      --resp "127.0.0.1:${resp[$i]}" --resp-n "$n" --resp-r "$q" --resp-w "$q" \
      --log-level warn $DKVS_ARGS 127.0.0.1 "${ports[$i]}" >"$dir/log-$i" 2>&1 &
    pids+=($!)
    wait_resp "${resp[$i]}" $! "$dir/log-$i"
  done
  DPORT=${resp[0]}
}

# bench NAME PORT [-P P]: prints "NAME<TAB>-P<TAB>TEST<TAB>rps<TAB>p50" per test.
bench() {
  local name=$1 port=$2 p=${3:-1} out
  out=$(redis-benchmark -h 127.0.0.1 -p "$port" -t set,get -n "$REQUESTS" -c "$CLIENTS" -P "$p" --csv 2>&1) ||
    die "redis-benchmark on $name failed: $out"
  if grep -qi 'error' <<<"$out"; then die "redis-benchmark on $name reported errors: $out"; fi
  # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms",...
  tr -d '"' <<<"$out" | awk -F, -v n="$name" -v p="$p" '$1=="SET"||$1=="GET" {printf "%s\t%s\t%s\t%s\t%s\n", n, p, $1, $2, $5}'
}

echo "machine: $(nproc) cores; load before: $(uptime | sed 's/.*load average/load average/')"
echo "redis-benchmark -t set,get -n $REQUESTS -c $CLIENTS, without and with -P $PIPELINE; dkvs options: ${DKVS_ARGS:-(defaults: Pebble, synced writes)}"
results="$work/results"
: >"$results"
start_redis
rport=$RPORT
start_dkvs 1 1
d1=$DPORT
start_dkvs 3 3
d3=$DPORT
for p in 1 "$PIPELINE"; do
  bench redis "$rport" "$p" >>"$results"
  bench "dkvs N=1" "$d1" "$p" >>"$results"
  bench "dkvs N=3 W=2 R=2" "$d3" "$p" >>"$results"
done
echo "load after: $(uptime | sed 's/.*load average/load average/')"
echo
awk -F'\t' '
  $1=="redis" { base[$2 FS $3] = $4 }
  { rows[++n] = $0 }
  END {
    printf "%-18s %4s %-4s %12s %9s %9s\n", "system", "-P", "test", "requests/s", "p50 ms", "vs redis"
    for (i = 1; i <= n; i++) {
      split(rows[i], f, FS)
      b = base[f[2] FS f[3]]
      printf "%-18s %4s %-4s %12.0f %9s %8.2fx\n", f[1], f[2], f[3], f[4], f[5], (b > 0 ? f[4] / b : 0)
    }
  }' "$results"
