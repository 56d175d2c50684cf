# Mode pair-server (netfront-pair, domain 1): ping the other domain, then
# receive what it sends on TCP port 5001 and count it.
. /test/lib-net.sh
net_up
ping_until 10.0.0.3 60
nc -l -p 5001 | dd of=/dev/null bs=65536 iflag=fullblock 2>/tmp/dd.pair
say "pair received $(dd_bytes /tmp/dd.pair) bytes"
