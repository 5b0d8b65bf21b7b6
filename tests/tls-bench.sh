#!/usr/bin/env bash
# tls-bench.sh: the cost of TLS. A ring of three servers on 127.0.0.1
# (--memory, so that the disk does not hide it), benchmarked with
# dkvs-client bench at 1 and 50 clients (N=3, R=W=2, 50% gets, 100-byte
# values, 1000 keys, 10 s), without TLS and with it, alternately, ROUNDS
# times (default 2). Prints the load average before each run.
#
#   tests/tls-bench.sh [ROUNDS]        (after make build; from the checkout)
set -euo pipefail
bin=$(cd "$(dirname "${BASH_SOURCE[0]}")/../done" && pwd)
rounds=${1:-2}
dir=$(mktemp -d)
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$dir"' EXIT
cd "$dir"
ports=(17201 17202 17203)
for p in "${ports[@]}"; do echo "127.0.0.1 $p 1"; done > servers.txt
"$bin/dkvs-client" certs --out certs >/dev/null
pids=()
start() { # plain or tls
  pids=()
  for p in "${ports[@]}"; do
    t=()
    if [ "$1" = tls ]; then
      t=(--tls-ca certs/ca.pem --tls-cert "certs/server-127.0.0.1-$p.pem" --tls-key "certs/server-127.0.0.1-$p-key.pem")
    fi
    "$bin/dkvs-server" --memory "${t[@]}" --log-level error 127.0.0.1 "$p" >>"server-$1.log" 2>&1 &
    pids+=($!)
  done
  for _ in $(seq 100); do
    "$bin/dkvs-client" "${c[@]}" --timeout 200ms dump >/dev/null 2>&1 && return
    sleep 0.1
  done
  echo "tls-bench: the $1 ring did not start" >&2
  exit 1
}
stop() { kill "${pids[@]}"; wait "${pids[@]}" 2>/dev/null || true; pids=(); }
for round in $(seq "$rounds"); do
  for mode in plain tls; do
    c=()
    [ "$mode" = tls ] && c=(--tls-ca certs/ca.pem)
    start "$mode"
    for conc in 1 50; do
      echo "== round $round, $mode, $conc clients, load average $(cut -d' ' -f1-3 /proc/loadavg)"
      "$bin/dkvs-client" "${c[@]}" bench --duration 10s --concurrency "$conc" --no-progress | grep -E "phase|run "
    done
    stop
  done
done
