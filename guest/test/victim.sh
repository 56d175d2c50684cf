# Mode victim (the hostile-* scenarios): the domain beside an attacker does its
# own work: pings the peer host (10.0.0.1), sends $net_bytes to its discard
# port and reads as many from its source port (each transfer bounded by
# `timeout`, so a stolen connection ends the test instead of hanging it),
# prints what moved, and pings again.
. /test/lib-net.sh
net_up
ping_until 10.0.0.1 20
dd if=/dev/zero bs=65536 count=$net_blocks 2>/tmp/dd.tx | timeout 120 nc 10.0.0.1 9
timeout 120 nc 10.0.0.1 19 </dev/null | dd of=/dev/null bs=65536 count=$net_blocks iflag=fullblock 2>/tmp/dd.rx
say "victim sent $(dd_bytes /tmp/dd.tx) received $(dd_bytes /tmp/dd.rx) bytes"
ping_until 10.0.0.1 5
