# Mode iperf-client (`xenolith-tools bench iperf3`, domain 2, 10.0.0.3):
# $net_repeat times (xenolith.repeat=) `iperf3 -c 10.0.0.2 -t <s>`
# (client -> server, dir=c2s) then the same with -R (server -> client,
# dir=s2c), <s> from xenolith.seconds= (default 10), with -P <p> parallel
# streams when xenolith.streams=<p> (default 1) is more than 1, then tells
# the server (mode iperf-server) it is done. One line per run:
#   GUEST IPERF dir=c2s run=1 streams=P mbit=M bytes=B secs=S tsc=T tries=N
# M, B, S: the receiver's bitrate (Mbit/s, as iperf3 reports it), bytes and
# seconds from iperf3's JSON "sum_received" (all streams); T: TSC ticks
# around the iperf3 process (emulated instructions under Bochs with
# sync=none); N: attempts (a run that fails, e.g. before the server listens,
# is tried again).
# A run that never succeeds prints "GUEST IPERF FAIL dir=... run=...: why".
# Right before each attempt's first TSC read and right after its last, the
# line "XENOLITH TICKS <dir>-<P>-<run>-begin" (or -end) has the hypervisor
# print its tick ledger ("ticks <label>: tsc=..."; the last attempt's count).
. /test/lib-net.sh
iperf_secs=10
iperf_streams=1
iperf_kallsyms=
for word in $(cat /proc/cmdline); do
    case "$word" in
        xenolith.seconds=*) iperf_secs="${word#xenolith.seconds=}" ;;
        xenolith.streams=*) iperf_streams="${word#xenolith.streams=}" ;;
        xenolith.kallsyms=1) iperf_kallsyms=1 ;;
    esac
done
case "$iperf_streams" in
    '' | *[!0-9]* | 0) iperf_streams=1 ;;
esac
iperf_parallel=""
[ "$iperf_streams" -gt 1 ] && iperf_parallel="-P $iperf_streams"

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
    local label="$dir-$iperf_streams-$run"
    while :; do
        tries=$((tries + 1))
        echo "XENOLITH TICKS $label-begin"
        c0=$(/bin/rdtsc)
        iperf3 -c 10.0.0.2 -t "$iperf_secs" $flag $iperf_parallel -J >/tmp/iperf3.json 2>&1
        rc=$?
        c1=$(/bin/rdtsc)
        echo "XENOLITH TICKS $label-end"
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
    say "IPERF dir=$dir run=$run streams=$iperf_streams mbit=$2 bytes=$1 secs=$3 tsc=$((c1 - c0)) tries=$tries"
}

net_up
ping_until 10.0.0.2 60
run=1
while [ "$run" -le "$net_repeat" ]; do
    iperf_run c2s "$run"
    iperf_run s2c "$run"
    run=$((run + 1))
done
# For `xenolith-tools profile` (boots with profile_us= and nokaslr): the
# kernel's text symbols, gzipped and in base64, between two marker lines.
if [ -n "$iperf_kallsyms" ]; then
    say "KALLSYMS begin"
    awk '$2 == "t" || $2 == "T" { print $1, $3, $4 }' /proc/kallsyms | gzip -9 | base64
    say "KALLSYMS end"
fi
# Tell the server we are done (it may still be starting its listener: retry).
n=0
until echo done | nc 10.0.0.2 5002; do
    n=$((n + 1)); [ "$n" -ge 20 ] && break; sleep 1
done
say "IPERF client done"
