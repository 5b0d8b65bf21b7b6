#!/usr/bin/env bash
# race-each.sh PACKAGE: runs each test of PACKAGE in its own process
# under the race detector.
#
# Why: the race detector's runtime (ThreadSanitizer, linked into the test
# binary) sometimes crashes inside itself on processes with very many
# goroutines, such as dkvs/ringtest's whole rings in one process: a
# SIGSEGV in __tsan::SlotLock, or a CHECK failure. Seen in CI in long runs
# of the whole package and once in a run of a few seconds; never
# reproduced here in hundreds of runs. Such a crash says nothing about
# our code, so a run that ends in one is run again (twice at most). A
# data race, a failed test, a timeout or any other crash fails at once.
set -euo pipefail

pkg=${1:?usage: race-each.sh PACKAGE}
GO=${GO:-go}
tries=3

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bin=$work/race.test
$GO test -c -race -o "$bin" "$pkg"
dir=$($GO list -f '{{.Dir}}' "$pkg")
$GO tool nm -n "$bin" > "$work/syms" 2>/dev/null || true

# tsan_crash LOG: true when LOG is a crash of ThreadSanitizer's runtime
# and nothing else: no race report, no failed test, and either the
# runtime's own CHECK/FATAL message or a signal whose PC lies in its code.
tsan_crash() {
  local log=$1 pc sym
  grep -q 'WARNING: DATA RACE\|race detected during execution\|^--- FAIL\|panic: test timed out' "$log" && return 1
  grep -q 'ThreadSanitizer: CHECK failed\|FATAL: ThreadSanitizer' "$log" && return 0
  grep -q 'SIGSEGV\|SIGBUS' "$log" || return 1
  pc=$(grep -oE '\b(PC|pc)=0x[0-9a-f]+' "$log" | head -1 | sed 's/.*=0x//')
  [ -n "$pc" ] || return 1
  sym=$(awk -v pc="$pc" '
    function hex(s,   i, c, v) { v = 0; s = tolower(s)
      for (i = 1; i <= length(s); i++) { c = index("0123456789abcdef", substr(s, i, 1)) - 1; v = v * 16 + c }
      return v }
    BEGIN { want = hex(pc) }
    NF >= 3 && $1 ~ /^[0-9a-f]+$/ { a = hex($1); if (a <= want && a > best) { best = a; name = $3 } }
    END { print name }' "$work/syms")
  case $sym in
    *__tsan*|*__sanitizer*|*__race*) echo "race-each: the PC 0x$pc lies in $sym, ThreadSanitizer's own code" >&2; return 0 ;;
  esac
  return 1
}

tests=$(cd "$dir" && "$bin" -test.list '^Test' | grep '^Test' || true)
for t in $tests; do
  for try in $(seq 1 $tries); do
    echo "race $pkg $t"
    log=$work/$t.log
    if (cd "$dir" && "$bin" -test.count=1 -test.timeout=10m -test.run "^$t\$") > "$log" 2>&1; then
      grep -v '^PASS$' "$log" || true
      break
    fi
    cat "$log"
    if [ "$try" -lt "$tries" ] && tsan_crash "$log"; then
      echo "race-each: ThreadSanitizer's runtime crashed during $t (not a race report, not a failed test): running it again ($((try + 1)) of $tries)" >&2
      continue
    fi
    echo "race-each: $t failed under the race detector" >&2
    exit 1
  done
done
