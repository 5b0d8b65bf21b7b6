#!/usr/bin/env bash
# What `make test` needs beyond Go, gcc and make, checked in its first
# second: run as root on Debian, it installs what is missing with apt-get
# (after apt-get update); otherwise it stops with one line saying what to
# install. Nothing the tests need is skipped silently: each test fails
# without it.
set -euo pipefail

need=() # Debian packages
have() { command -v "$1" >/dev/null 2>&1; }
have nm || need+=(binutils)                 # the C library's exported symbols
have pkg-config || need+=(pkg-config)       # the README's C example, built with libdkvs.pc
{ have redis-cli && have redis-benchmark; } || need+=(redis-tools) # RESP tests
have chromium || need+=(chromium)           # the web console's browser test (headless)
printf '#include <stdio.h>\n' | ${CC:-cc} -E -x c - >/dev/null 2>&1 || need+=(libc6-dev)

[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && have apt-get; then
  echo "make test: installing ${need[*]} with apt-get"
  log=$(mktemp)
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "make test: apt-get could not install ${need[*]}" >&2
    exit 1
  fi
  rm -f "$log"
  exit 0
fi
echo "make test: missing ${need[*]}: install with 'sudo apt-get install ${need[*]}' or run make test as root" >&2
exit 1
