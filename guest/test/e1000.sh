# Mode e1000: the bare-Bochs network reference (`xenolith-tools bench
# net-bare`) for the netfront mode. Bochs' emulated e1000 on its slirp network,
# where the gateway 10.0.2.2 stands for the host's 127.0.0.1: sends
# $net_bytes (xenolith.bytes) to the host's sink on port xenolith.sink, then
# reads as many from its source on port xenolith.source, the same busybox dd
# and nc as the netfront mode, each direction timed by the guest's clock and
# by the TSC (/bin/rdtsc: emulated instructions under Bochs with sync=none).
# Both transfers run $net_repeat times (xenolith.repeat=, default 1), each
# time ending with the line
#   GUEST E1000 tx_bytes=N tx_mbit=X tx_tsc=T tx_cs=C tx_idle=P rx_bytes=... rx_idle=P
# (_cs: centiseconds by the guest's clock, which runs at the TSC rate CPUID
# claims, not at Bochs' emulated rate; _idle: percent of the guest's CPU time
# spent idle, in HLT, while the TSC runs on). A failed step prints
# "GUEST E1000 FAIL <why>" and the rest is skipped.
. /test/lib-net.sh

# "busy idle" CPU time from /proc/stat (idle includes iowait), in the kernel's ticks.
e1000_cpu() {
    awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat
}

# Percent of the CPU time between two e1000_cpu samples that was idle.
e1000_idle() {
    echo "$1 $2" | awk '{ b = $3 - $1; i = $4 - $2; if (b + i > 0) printf "%.1f", 100 * i / (b + i); else print "-" }'
}

e1000_run() {
    local sink="" source="" word n
    for word in $(cat /proc/cmdline); do
        case "$word" in
            xenolith.sink=*) sink="${word#*=}" ;;
            xenolith.source=*) source="${word#*=}" ;;
        esac
    done
    case "$sink:$source:$net_blocks" in
        *[!0-9:]* | :* | *::* | *:0) say "E1000 FAIL bad xenolith.sink/source/bytes"; return ;;
    esac
    if ! insmod "/lib/modules/$(uname -r)/kernel/drivers/net/ethernet/intel/e1000/e1000.ko"; then
        say "E1000 FAIL insmod e1000.ko"
        return
    fi
    if ! [ -e /sys/class/net/eth0 ]; then
        say "E1000 FAIL no eth0"
        return
    fi
    # No IPv6 chatter (router solicitations) on slirp, which drops it anyway.
    echo 1 >/proc/sys/net/ipv6/conf/all/disable_ipv6 2>/dev/null
    ip link set lo up
    ip addr add 10.0.2.15/24 dev eth0
    ip link set eth0 up
    # Packets sent before the carrier is up are dropped.
    n=0
    while [ "$(cat /sys/class/net/eth0/carrier 2>/dev/null)" != 1 ]; do
        n=$((n + 1))
        if [ "$n" -gt 100 ]; then
            say "E1000 FAIL eth0 has no carrier"
            return
        fi
        sleep 0.1
    done
    ip route add default via 10.0.2.2
    # The guest's clock runs at the TSC rate it believes (CPUID's, not Bochs' ips).
    say "E1000 up $(ip -4 addr show dev eth0 | grep -o 'inet [0-9./]*'), $net_blocks x 65536 bytes" \
        "each way, cpu_mhz=$(grep -m1 'cpu MHz' /proc/cpuinfo | sed 's/.*: *//')"
    n=0
    while [ "$n" -lt "$net_repeat" ]; do
        e1000_transfer "$sink" "$source"
        n=$((n + 1))
    done
}

# Both transfers once, to the host's sink on port $1 and from its source on port $2.
e1000_transfer() {
    local sink=$1 source=$2 t0 t1 t2 c0 c1 c2 u0 u1 u2 tx rx
    u0=$(e1000_cpu); t0=$(cs_now); c0=$(/bin/rdtsc)
    dd if=/dev/zero bs=65536 count="$net_blocks" 2>/tmp/dd.tx | nc 10.0.2.2 "$sink"
    c1=$(/bin/rdtsc); t1=$(cs_now); u1=$(e1000_cpu)
    nc 10.0.2.2 "$source" </dev/null | dd of=/dev/null bs=65536 count="$net_blocks" iflag=fullblock 2>/tmp/dd.rx
    c2=$(/bin/rdtsc); t2=$(cs_now); u2=$(e1000_cpu)

    tx=$(dd_bytes /tmp/dd.tx); rx=$(dd_bytes /tmp/dd.rx)
    say "E1000 tx_bytes=${tx:-0} tx_mbit=$(mbit "${tx:-0}" $((t1 - t0))) tx_tsc=$((c1 - c0))" \
        "tx_cs=$((t1 - t0)) tx_idle=$(e1000_idle "$u0" "$u1")" \
        "rx_bytes=${rx:-0} rx_mbit=$(mbit "${rx:-0}" $((t2 - t1))) rx_tsc=$((c2 - c1))" \
        "rx_cs=$((t2 - t1)) rx_idle=$(e1000_idle "$u1" "$u2")"
}
e1000_run
