# Mode netfront: the guest's own netfront against the hypervisor's peer host
# (10.0.0.1: TCP discard on 9, endless source on 19). Moves $net_bytes each
# way with busybox nc and dd and prints what the guest measured; the
# transfers (not the checks before them) run $net_repeat times
# (xenolith.repeat=, for `xenolith-tools bench netfront`), a NETFRONT line
# and a "GUEST netfront" line each time.
. /test/lib-net.sh
net_up
. /test/lib-xs.sh
ping_until 10.0.0.1 20

netfront_transfer() {
    t0=$(cs_now); c0=$(/bin/rdtsc)
    dd if=/dev/zero bs=65536 count=$net_blocks 2>/tmp/dd.tx | nc 10.0.0.1 9
    t1=$(cs_now); c1=$(/bin/rdtsc)
    nc 10.0.0.1 19 </dev/null | dd of=/dev/null bs=65536 count=$net_blocks iflag=fullblock 2>/tmp/dd.rx
    t2=$(cs_now); c2=$(/bin/rdtsc)

    tx=$(dd_bytes /tmp/dd.tx); rx=$(dd_bytes /tmp/dd.rx)
    echo "NETFRONT tx_bytes=${tx:-0} tx_mbit=$(mbit ${tx:-0} $((t1 - t0))) rx_bytes=${rx:-0} rx_mbit=$(mbit ${rx:-0} $((t2 - t1)))"
    say "netfront tx_cs=$((t1 - t0)) tx_tsc=$((c1 - c0)) rx_cs=$((t2 - t1)) rx_tsc=$((c2 - c1))"
}

run=0
while [ "$run" -lt "$net_repeat" ]; do
    netfront_transfer
    run=$((run + 1))
done
