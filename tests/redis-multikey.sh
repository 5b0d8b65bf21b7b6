#!/usr/bin/env bash
# redis-multikey.sh: MSET and MGET of 100 keys against SET and GET of one,
# through one server's RESP port of a ring of three (N=3, W=2, R=2,
# synced writes), at the same concurrency.
#
#   tests/redis-multikey.sh            (BIN=done C=50)
#
# redis-benchmark with -r 100000 (random keys k:NNN), 100-byte values:
# SET and GET of one key (-n 20000), MSET and MGET of 100 keys (-n 1000).
# Keys per second of MSET/MGET are 100 times its requests per second.
# Every process it started is stopped on exit. Environment: BIN (done),
# C (50: redis-benchmark's -c).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-done}
C=${C:-50}
command -v redis-benchmark >/dev/null || { echo "redis-multikey: apt-get install redis-tools" >&2; exit 1; }
[ -x "$BIN/dkvs-server" ] || { echo "redis-multikey: $BIN/dkvs-server not built (run make)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/redis-multikey.XXXXXX")
pids=()
cleanup() {
  local status=$?
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

# free_port (sets PORT) is in tests/lib/ports.sh.
. tests/lib/ports.sh

ports=() resp=()
for i in 0 1 2; do free_port; ports+=("$PORT"); free_port; resp+=("$PORT"); done
for p in "${ports[@]}"; do echo "127.0.0.1 $p 2" >>"$work/servers.txt"; done
for i in 0 1 2; do
  "$BIN/dkvs-server" --servers "$work/servers.txt" --data-dir "$work/data-$i" \
    --resp "127.0.0.1:${resp[$i]}" --log-level warn 127.0.0.1 "${ports[$i]}" >"$work/log-$i" 2>&1 &
  pids+=($!)
done
for i in 0 1 2; do
  for _ in $(seq 200); do [ "$(redis-cli -p "${resp[$i]}" ping 2>/dev/null)" = PONG ] && break; sleep 0.05; done
done

value=$(head -c 100 /dev/zero | tr '\0' v)
mset=() mget=()
for _ in $(seq 100); do mset+=("k:__rand_int__" "$value"); mget+=("k:__rand_int__"); done
# rb N ARGS...: requests per second, p50 and the errors of one run.
rb() {
  local n=$1; shift
  redis-benchmark -p "${resp[0]}" -c "$C" -n "$n" -r 100000 "$@" 2>&1 | tr '\r' '\n' |
    grep -v '^MSET\|^MGET' |
    awk '/throughput summary/ {t=$3} /^Error/ {e++} /avg.*min.*p50/ {getline; p=$3}
         END {printf "%s requests/s, p50 %s ms, errors %d", (t == "" ? "none" : t), p, e}'
}
echo "dkvs N=3 W=2 R=2 synced, RESP, c=$C; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "SET one key:   $(rb 20000 SET 'k:__rand_int__' "$value")"
echo "MSET 100 keys: $(rb 1000 MSET "${mset[@]}")"
echo "GET one key:   $(rb 20000 GET 'k:__rand_int__')"
echo "MGET 100 keys: $(rb 1000 MGET "${mget[@]}")"
