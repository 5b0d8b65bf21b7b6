#!/usr/bin/env bash
# YCSB workloads A, B, C and F (go-ycsb, string datatype) against three
# systems, one after the other on this machine:
#   dkvs   three servers, N=3 W=2 R=2, synced, through one server's RESP port
#   redis  redis-server 7, one node, no persistence
#   etcd   three members (as ../shared/bench/compare.sh runs them)
# Not part of `make test` (make bench-ycsb runs it). Prints one table row
# per system, workload and thread count, then the load average.
#
# Usage: tests/ycsb.sh [DONE_DIR]   (DONE_DIR holds dkvs-server; default done)
# Environment:
#   YCSB       the go-ycsb binary (default: go-ycsb on PATH, else
#              $YCSB_DIR/go-ycsb, built there if missing, see build_ycsb)
#   YCSB_DIR   where to build go-ycsb (default /tmp/ycsb-bin)
#   SYSTEMS    default "dkvs redis etcd"
#   WORKLOADS  default "a b c f"
#   THREADS    default "50 1"
#   RECORDS    records loaded (default 10000)
#   OPS        operations per run with many threads (default 50000)
#   OPS1       operations per run with one thread (default 10000)
#   RAW        directory to keep go-ycsb's full outputs (default: discarded)
# Needs redis-server and etcd (Debian: redis-server, etcd-server) for
# those systems. Ports: 18101-18103, 18201-18203, 18379, 31379-33380.
#
# go-ycsb v1.0.3 is built outside dkvs's module: its go.mod has replace
# directives, so `go install ...@v1.0.3` refuses it; the module is copied
# from the module cache and built as the main module there. It is never a
# dependency of dkvs's go.mod.
set -u
DONE=$(readlink -f "${1:-done}")
SYSTEMS=${SYSTEMS:-"dkvs redis etcd"}
WORKLOADS=${WORKLOADS:-"a b c f"}
THREADS=${THREADS:-"50 1"}
RECORDS=${RECORDS:-10000}
OPS=${OPS:-50000}
OPS1=${OPS1:-10000}
YCSB_VERSION=v1.0.3
YCSB_DIR=${YCSB_DIR:-/tmp/ycsb-bin}
W=$(mktemp -d); PIDS=()
cleanup() { stop; rm -rf "$W"; }
trap cleanup EXIT
stop() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && { kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; }; done; PIDS=(); sleep 0.5; }
wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 not open" >&2; return 1; }
die() { echo "ycsb.sh: $*" >&2; exit 2; }

build_ycsb() {
  local src
  src=$(cd "$W" && GOFLAGS=-mod=mod go mod download -json "github.com/pingcap/go-ycsb@$YCSB_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -d "$src" ] || die "cannot download github.com/pingcap/go-ycsb@$YCSB_VERSION"
  rm -rf "$W/go-ycsb" && cp -r "$src" "$W/go-ycsb" && chmod -R u+w "$W/go-ycsb"
  mkdir -p "$YCSB_DIR"
  (cd "$W/go-ycsb" && go build -o "$YCSB_DIR/go-ycsb" ./cmd/go-ycsb) || die "go-ycsb does not build"
}

if [ -z "${YCSB:-}" ]; then
  YCSB=$(command -v go-ycsb || true)
  [ -n "$YCSB" ] || { YCSB=$YCSB_DIR/go-ycsb; [ -x "$YCSB" ] || { echo "building go-ycsb $YCSB_VERSION in $YCSB_DIR" >&2; build_ycsb; }; }
fi
[ -x "$YCSB" ] || die "no go-ycsb at $YCSB"

# The core workloads as go-ycsb ships them (workloads/workload{a,b,c,f}):
# 10 fields of 100 bytes per record, uniform key choice.
wl_props() {
  case $1 in
  a) echo "readproportion=0.5 updateproportion=0.5" ;;
  b) echo "readproportion=0.95 updateproportion=0.05" ;;
  c) echo "readproportion=1 updateproportion=0" ;;
  f) echo "readproportion=0.5 updateproportion=0 readmodifywriteproportion=0.5" ;;
  *) die "unknown workload $1" ;;
  esac
}

# ycsb MODE DB WORKLOAD THREADS OPS ARGS... runs go-ycsb and prints its
# final TOTAL line's throughput and p99, and the error lines' counts.
ycsb() {
  local mode=$1 db=$2 wl=$3 th=$4 ops=$5; shift 5
  local props=(-p workload=core -p recordcount="$RECORDS" -p operationcount="$ops" -p threadcount="$th"
    -p requestdistribution=uniform -p readallfields=true -p fieldcount=10 -p fieldlength=100
    -p scanproportion=0 -p insertproportion=0 -p readmodifywriteproportion=0)
  local kv
  for kv in $(wl_props "$wl"); do props+=(-p "$kv"); done
  local out=$W/out
  "$YCSB" "$mode" "$db" "${props[@]}" "$@" >"$out" 2>&1
  local rc=$?
  [ -n "${RAW:-}" ] && { mkdir -p "$RAW"; cp "$out" "$RAW/$db-$mode-$wl-t$th.txt"; }
  # Only the summary after "Run finished": go-ycsb prints the same lines
  # every 10 s while it runs.
  awk -v rc=$rc '
    /Run finished/ { fin = 1; next }
    fin && /^TOTAL / { for (i = 1; i <= NF; i++) { if ($i == "OPS:") ops = $(i+1); if ($i == "99th(us):") p99 = $(i+1) } }
    fin && /_ERROR / { for (i = 1; i <= NF; i++) if ($i == "Count:") errs += $(i+1) }
    END { gsub(",", "", ops); gsub(",", "", p99)
          if (ops == "") { printf "failed (exit %d)\n", rc; exit }
          printf "%10.0f %10.2f %6d\n", ops, p99 / 1000, errs }' "$out"
}

row() { printf '%-8s %-3s %7s %s\n' "$1" "$2" "$3" "$4"; }

# run_system NAME DB ARGS... loads the records, then runs each workload
# with each thread count on the same data.
run_system() {
  local sys=$1 db=$2; shift 2
  echo "# load $sys, 50 threads: $(ycsb load "$db" a 50 "$RECORDS" "$@")"
  local wl th ops
  for wl in $WORKLOADS; do
    for th in $THREADS; do
      ops=$OPS; [ "$th" = 1 ] && ops=$OPS1
      row "$sys" "$wl" "$th" "$(ycsb run "$db" "$wl" "$th" "$ops" "$@")"
    done
  done
}

echo "# go-ycsb $YCSB_VERSION, $RECORDS records, $OPS ops ($OPS1 with one thread); $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-8s %-3s %7s %10s %10s %6s\n' system wl threads ops/s p99_ms errors
for sys in $SYSTEMS; do
  case $sys in
  dkvs)
    [ -x "$DONE/dkvs-server" ] || die "no $DONE/dkvs-server (make build)"
    D=$W/ring; mkdir -p "$D"; printf '127.0.0.1 18101 2\n127.0.0.1 18102 2\n127.0.0.1 18103 2\n' >"$D/servers.txt"
    for p in 18101 18102 18103; do
      (cd "$D" && exec "$DONE/dkvs-server" --resp 127.0.0.1:$((p + 100)) 127.0.0.1 $p >"$D/s$p.log" 2>&1) & PIDS+=($!)
    done
    for p in 18101 18102 18103; do wait_port $p && wait_port $((p + 100)) || exit 1; done
    run_system dkvs redis -p redis.addr=127.0.0.1:18201 -p redis.datatype=string
    stop ;;
  redis)
    command -v redis-server >/dev/null || die "redis-server not installed"
    redis-server --port 18379 --bind 127.0.0.1 --save '' --appendonly no >/dev/null 2>&1 & PIDS+=($!)
    wait_port 18379 || exit 1
    run_system redis redis -p redis.addr=127.0.0.1:18379 -p redis.datatype=string
    stop ;;
  etcd)
    command -v etcd >/dev/null || die "etcd not installed"
    cl=""; for i in 1 2 3; do cl="$cl,e$i=http://127.0.0.1:3${i}380"; done; cl=${cl#,}
    for i in 1 2 3; do
      etcd --name e$i --data-dir "$W/etcd$i" --listen-client-urls http://127.0.0.1:3${i}379 --advertise-client-urls http://127.0.0.1:3${i}379 \
        --listen-peer-urls http://127.0.0.1:3${i}380 --initial-advertise-peer-urls http://127.0.0.1:3${i}380 \
        --initial-cluster "$cl" --initial-cluster-state new >"$W/etcd$i.log" 2>&1 & PIDS+=($!)
    done
    for i in 1 2 3; do wait_port 3${i}379 || exit 1; done
    sleep 1
    run_system etcd etcd -p etcd.endpoints=127.0.0.1:31379,127.0.0.1:32379,127.0.0.1:33379
    stop ;;
  *) die "unknown system $sys" ;;
  esac
done
echo "# done $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
