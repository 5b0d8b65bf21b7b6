# ports.sh: free_port for the benchmark scripts (tests/redis-compare.sh,
# tests/redis-multikey.sh, tests/ae-restart.sh), which source it after
# changing to the repository's root.
#
# free_port sets PORT to a port of 127.0.0.1 nobody answers on (TCP) and
# not handed out before by this script. (It sets a global rather than
# print: a $(...) subshell would lose the processes the scripts start.)
taken=" "
ephemeral_low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
[ "${ephemeral_low:-0}" -gt 11000 ] || ephemeral_low=32768
free_port() {
  local p
  while :; do
    # Below the kernel's ephemeral range: a port there can be the local
    # end of some connection (a benchmark's clients) without anyone
    # answering on it, and a server's bind then fails.
    p=$((10000 + RANDOM % (ephemeral_low - 10000)))
    case "$taken" in *" $p "*) continue ;; esac
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      taken="$taken$p "
      PORT=$p
      return
    fi
  done
}
