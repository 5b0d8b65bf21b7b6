#!/usr/bin/env bash
# cpu-per-op.sh: the CPU time that the processes matching a pattern spend
# while a command runs, read from /proc/PID/stat (user + system time)
# before and after it. Used in docs/performance.md to compare what a
# server spends per operation when the same load comes natively or
# through its Redis port, and what redis-server spends for it.
#
#   tests/cpu-per-op.sh PATTERN COMMAND [ARG...]
#
# PATTERN is matched against whole command lines (pgrep -f), e.g.
# 'dkvs-server --resp 127.0.0.1:172'. The command's own CPU time is
# printed too (cmd_cpu_s=user+system), then the processes' total.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 PATTERN COMMAND [ARG...]" >&2
  exit 2
fi
pattern=$1
shift
tick=$(getconf CLK_TCK)

ticks() {
  local sum=0 pid u s
  for pid in $(pgrep -f -- "$pattern" || true); do
    [ "$pid" = "$$" ] && continue
    read -r u s < <(awk '{print $14, $15}' "/proc/$pid/stat" 2>/dev/null || echo "0 0")
    sum=$((sum + u + s))
  done
  echo "$sum"
}

before=$(ticks)
start=$(date +%s.%N)
if [ -x /usr/bin/time ]; then
  /usr/bin/time -f "cmd_cpu_s=%U+%S" "$@"
else
  "$@" # (apt-get install time for the command's own CPU time)
fi
after=$(ticks)
end=$(date +%s.%N)
awk -v a="$before" -v b="$after" -v t="$tick" -v s="$start" -v e="$end" \
  'BEGIN { printf "processes_cpu_s=%.2f wall_s=%.2f\n", (b - a) / t, e - s }'
