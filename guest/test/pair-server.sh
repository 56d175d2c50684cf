# Mode pair-server (netfront-pair, domain 1): receive what the other domain
# sends on TCP port 5001, count it, then ping the sender back.
. /test/lib-net.sh
net_up
nc -l -p 5001 | dd of=/dev/null bs=65536 2>/tmp/dd.pair
say "pair received $(dd_bytes /tmp/dd.pair) bytes"
ping_until 10.0.0.3 20
