# Mode iperf-client (`xenolith-tools bench iperf3`, domain 2, 10.0.0.3):
# $net_repeat times (xenolith.repeat=) `iperf3 -c 10.0.0.2 -t <s>`
# (client -> server, dir=c2s) then the same with -R (server -> client,
# dir=s2c), <s> from xenolith.seconds= (default 10), then tells the server
# (mode iperf-server) it is done. One line per run:
#   GUEST IPERF dir=c2s run=1 mbit=M bytes=B secs=S tsc=T tries=N
# M, B, S: the receiver's bitrate (Mbit/s, as iperf3 reports it), bytes and
# seconds from iperf3's JSON "sum_received"; T: TSC ticks around the iperf3
# process (emulated instructions under Bochs with sync=none); N: attempts
# (a run that fails, e.g. before the server listens, is tried again).
# A run that never succeeds prints "GUEST IPERF FAIL dir=... run=...: why".
. /test/lib-net.sh
iperf_secs=10
for word in $(cat /proc/cmdline); do
    case "$word" in
        xenolith.seconds=*) iperf_secs="${word#xenolith.seconds=}" ;;
    esac
done

# "bytes mbit secs" of the receiver in iperf3's JSON output $1.
iperf_parse() {
    awk '/"sum_received"/ { r = 1 }
        r && /"seconds"/ { s = $2 }
        r && /"bytes"/ { b = $2 }
        r && /"bits_per_second"/ { m = $2 }
        r && /}/ { exit }
        END {
            gsub(/[^0-9]/, "", b); sub(/,$/, "", m); sub(/,$/, "", s)
            if (b != "" && m != "") printf "%s %.3f %.3f\n", b, m / 1e6, s
        }' "$1"
}

# One run: iperf_run <c2s|s2c> <run>.
iperf_run() {
    local dir=$1 run=$2 flag="" tries=0 c0 c1 rc r
    [ "$dir" = s2c ] && flag=-R
    while :; do
        tries=$((tries + 1))
        c0=$(/bin/rdtsc)
        iperf3 -c 10.0.0.2 -t "$iperf_secs" $flag -J >/tmp/iperf3.json 2>&1
        rc=$?
        c1=$(/bin/rdtsc)
        r=$(iperf_parse /tmp/iperf3.json)
        [ "$rc" = 0 ] && [ -n "$r" ] && break
        if [ "$tries" -ge 5 ]; then
            say "IPERF FAIL dir=$dir run=$run: rc=$rc" \
                "$(sed -n 's/.*"error":[[:space:]]*"\(.*\)".*/\1/p' /tmp/iperf3.json | head -n1)"
            return
        fi
        sleep 1
    done
    set -- $r
    say "IPERF dir=$dir run=$run mbit=$2 bytes=$1 secs=$3 tsc=$((c1 - c0)) tries=$tries"
}

net_up
ping_until 10.0.0.2 60
run=1
while [ "$run" -le "$net_repeat" ]; do
    iperf_run c2s "$run"
    iperf_run s2c "$run"
    run=$((run + 1))
done
# Tell the server we are done (it may still be starting its listener: retry).
n=0
until echo done | nc 10.0.0.2 5002; do
    n=$((n + 1)); [ "$n" -ge 20 ] && break; sleep 1
done
say "IPERF client done"
