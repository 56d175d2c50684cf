# Mode pair-client (netfront-pair, domain 2): wait for the other domain to
# answer ping, then send it $net_bytes on TCP port 5001.
. /test/lib-net.sh
net_up
ping_until 10.0.0.2 60
n=0
until dd if=/dev/zero bs=65536 count=$net_blocks 2>/tmp/dd.pair | nc 10.0.0.2 5001; do
    n=$((n + 1)); [ $n -ge 20 ] && break; sleep 1
done
say "pair sent $(dd_bytes /tmp/dd.pair) bytes"
