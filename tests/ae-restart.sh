#!/usr/bin/env bash
# ae-restart.sh: the ring's throughput while a restarted server repairs,
# and how long its repair takes (docs/performance.md, "Anti-entropy after
# a restart").
#
#   tests/ae-restart.sh               (BIN=done KEYS=1000000 by default)
#
# On free ports of 127.0.0.1, in a temporary directory, it starts three
# dkvs-servers (servers.txt COUNT 1, default options: synced writes,
# anti-entropy every 30 s; metrics and pprof on), loads KEYS keys of 100
# bytes (dkvs-client bench --load-only, N=3 W=2, 50 clients), and then,
# under the uniform 50-client workload over those keys:
#   - one 5 s window before the kill;
#   - the third server SIGKILLed about 1 s into a 7 s run and restarted
#     5 s after the kill;
#   - 5 s windows from the restart on, six at least (30 s) and until the
#     restarted server has completed an anti-entropy round with both
#     peers, while a 15 s CPU profile of the first server (a peer
#     answering the restarted one's diffs) is taken;
# and reports each window's ops/s, the restarted server's first
# anti-entropy round (its log line: when it ended after the restart, how
# long it took, the keys it received) and `dkvs-client status` at the end.
# Every process it started is stopped on exit, whatever happens.
# Environment: BIN (done), KEYS (1000000), KEEP (set: keep the directory).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-done}
KEYS=${KEYS:-1000000}
die() { echo "ae-restart: $*" >&2; exit 1; }
[ -x "$BIN/dkvs-server" ] || die "$BIN/dkvs-server not built (run make build)"
BIN=$(cd "$BIN" && pwd)

work=$(mktemp -d "${TMPDIR:-/tmp}/ae-restart.XXXXXX")
pids=()
cleanup() {
  local status=$?
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  if [ -n "${KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# free_port (sets PORT) is in tests/lib/ports.sh.
. tests/lib/ports.sh

ports=() metrics=() spid=()
for i in 0 1 2; do
  free_port; ports+=("$PORT")
  free_port; metrics+=("$PORT")
done
servers="$work/servers.txt"
for p in "${ports[@]}"; do echo "127.0.0.1 $p 1" >>"$servers"; done
client() { "$BIN/dkvs-client" --servers "$servers" "$@"; }

# start I: starts server I (again), logging to its log, and waits until it
# answers.
start() {
  local i=$1
  "$BIN/dkvs-server" --servers "$servers" --data-dir "$work/data-$i" \
    --metrics "127.0.0.1:${metrics[$i]}" --pprof \
    127.0.0.1 "${ports[$i]}" >>"$work/log-$i" 2>&1 &
  spid[i]=$!
  pids+=($!)
  for _ in $(seq 600); do
    if (exec 3<>"/dev/tcp/127.0.0.1/${ports[$i]}") 2>/dev/null; then return 0; fi
    kill -0 "${spid[$i]}" 2>/dev/null || { cat "$work/log-$i" >&2; die "server $i exited"; }
    sleep 0.05
  done
  die "server $i does not answer"
}

# window NAME ARGS...: one run of the uniform workload; prints its ops/s.
window() {
  local name=$1; shift
  client bench --concurrency 50 --keys "$KEYS" --no-preload --no-progress \
    --json "$work/$name.json" "$@" >"$work/$name.txt" 2>&1 || die "bench $name failed: $(cat "$work/$name.txt")"
  printf '%-22s %8.0f ops/s  p99 %6.1f ms  errors %s\n' "$name" \
    "$(jq .run.all.ops_per_sec "$work/$name.json")" \
    "$(jq '.run.all.latency_us.p99 / 1000' "$work/$name.json")" \
    "$(jq .run.all.errors "$work/$name.json")"
}

load() { cut -d' ' -f1-3 /proc/loadavg; }

echo "binaries: $BIN ($(git -C "$(dirname "$BIN")" describe --always --dirty 2>/dev/null || echo '?'))"
echo "machine: $(nproc) cores; load average before: $(load)"
for i in 0 1 2; do start "$i"; done
t0=$(date +%s.%N)
client bench --load-only --concurrency 50 --keys "$KEYS" --no-progress --json "$work/load.json" >"$work/load.txt" 2>&1 ||
  die "load failed: $(cat "$work/load.txt")"
printf 'load of %d keys: %.1f s, %.0f ops/s; load average %s\n' "$KEYS" \
  "$(echo "$(date +%s.%N) - $t0" | bc)" "$(jq .load.all.ops_per_sec "$work/load.json")" "$(load)"
du -sb "$work"/data-* | awk '{s+=$1} END {printf "data directories after the load: %.0f bytes apparent, %.1f per key per replica\n", s, s/3/'"$KEYS"'}'
du -s --block-size=1 "$work"/data-* | awk '{s+=$1} END {printf "  allocated (du): %.0f bytes, %.1f per key per replica\n", s, s/3/'"$KEYS"'}'
for i in 0 1 2; do grep VmRSS "/proc/${spid[$i]}/status" | awk -v i="$i" '{printf "  server %d RSS %d MiB\n", i, $2/1024}'; done

window before-kill --duration 5s
victim=2
window during-kill --duration 7s &
wpid=$!
sleep 1
kill -KILL "${spid[$victim]}"
wait "${spid[$victim]}" 2>/dev/null || true
tkill=$(date +%s.%N)
sleep 5
restart_at=$(date +%s.%N)
echo "--- restart (killed for $(echo "$restart_at - $tkill" | bc | cut -c1-4) s) ---" >>"$work/log-$victim"
start "$victim"
printf 'restarted server answers after %.2f s\n' "$(echo "$(date +%s.%N) - $restart_at" | bc)"
wait "$wpid"
curl -s -o "$work/peer.pprof" "http://127.0.0.1:${metrics[0]}/debug/pprof/profile?seconds=15" &
ppid=$!
# The restarted server's first anti-entropy round with both peers after
# the restart: it has then pulled every difference there was when it
# built its trees. The windows go on until it has ended (5 min at most).
first_round() { sed -n '/--- restart/,$p' "$work/log-$victim" | grep -m1 'anti-entropy round.*peers_synced=2' || true; }
w=0
while :; do
  w=$((w + 1))
  window "after-restart-$w" --duration 5s
  if [ "$w" -ge 6 ] && [ -n "$(first_round)" ]; then break; fi
  if [ "$w" -ge 60 ]; then echo "no complete round in 300 s"; break; fi
done
wait "$ppid" || true
echo "load average after: $(load)"
round=$(first_round)
if [ -n "$round" ]; then
  echo "first round after the restart: $round"
  end=$(sed -n 's/^time=\([^ ]*\).*/\1/p' <<<"$round")
  printf '  ended %.1f s after the restart\n' "$(echo "$(date -d "$end" +%s.%N) - $restart_at" | bc)"
fi
grep -h 'anti-entropy round' "$work/log-0" "$work/log-1" | tail -4 | sed 's/^/peer round: /' || true
client status || true
if [ -s "$work/peer.pprof" ]; then
  go tool pprof -top -cum "$BIN/dkvs-server" "$work/peer.pprof" 2>/dev/null |
    grep -E 'HandleDiff|buildTrees|ScanRange|storage.\(\*DB\).Scan|pull$|maybePullBack|Duration|Total' | head -12 || true
fi
