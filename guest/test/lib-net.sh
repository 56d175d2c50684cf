# Shared by the network modes (sourced from their scripts, not a mode itself).
# netfront up: load the driver, give eth0 the address from `xenolith.ip=`
# (default 10.0.0.2/24), print what the guest sees of its vif. A mode that
# measures repeats its measurement `xenolith.repeat=` times (default 1).
export PATH=/bin:/usr/bin
net_ip=10.0.0.2
net_bytes=67108864
net_repeat=1
for word in $(cat /proc/cmdline); do
    case "$word" in
        xenolith.ip=*) net_ip="${word#xenolith.ip=}" ;;
        xenolith.bytes=*) net_bytes="${word#xenolith.bytes=}" ;;
        xenolith.repeat=*) net_repeat="${word#xenolith.repeat=}" ;;
    esac
done
case "$net_repeat" in
    '' | *[!0-9]*) net_repeat=1 ;;
esac
net_blocks=$((net_bytes / 65536))

# Centiseconds since boot (the guest's own clock).
cs_now() { v=$(cut -d' ' -f1 /proc/uptime); echo "${v%.*}${v#*.}" | sed 's/^0*//;s/^$/0/'; }

# "x.yyy" Mbit/s for $1 bytes in $2 centiseconds.
mbit() {
    cs=$2; [ "$cs" -gt 0 ] || cs=1
    k=$(($1 * 8 / (cs * 10)))
    printf '%d.%03d' $((k / 1000)) $((k % 1000))
}

# Bytes busybox dd (bs=64k) wrote, from its "F+P records out" line: F full
# blocks; a partial block (P > 0) has no size there, so the count is unknown (0).
dd_bytes() {
    r=$(sed -n 's/^\([0-9]*\)+\([0-9]*\) records out$/\1 \2/p' "$1" | tail -n1)
    set -- $r
    if [ "${2:-1}" = 0 ]; then echo $(($1 * 65536)); else echo 0; fi
}

net_up() {
    insmod /lib/modules/$(uname -r)/kernel/drivers/net/xen-netfront.ko || say "insmod xen-netfront failed"
    n=0
    while [ ! -d /sys/class/net/eth0 ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
    ip link set lo up
    ip addr add "$net_ip/24" dev eth0
    ip link set eth0 up
    say "eth0 mac=$(cat /sys/class/net/eth0/address) ip=$net_ip"
    say "vif backend=$(xenstore-read device/vif/0/backend 2>/dev/null || echo none) state=$(xenstore-read device/vif/0/state 2>/dev/null || echo none)"
}

# ping $1 until it answers (at most ~$2 tries); prints the summary line.
ping_until() {
    n=0
    while ! ping -c 1 -W 1 "$1" >/dev/null 2>&1; do
        n=$((n + 1)); [ $n -ge "$2" ] && break
    done
    ping -c 3 "$1" | grep -e "packets transmitted" | sed "s/^/GUEST ping $1: /"
}
