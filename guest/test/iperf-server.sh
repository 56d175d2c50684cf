# Mode iperf-server (`xenolith-tools bench iperf3`, domain 1, 10.0.0.2):
# iperf3's server, up until the client (domain 2, mode iperf-client) says it
# is done by connecting to TCP port 5002.
. /test/lib-net.sh
net_up
iperf3 -s --forceflush >/tmp/iperf3-server.log 2>&1 &
iperf_server=$!
# busybox nc exits once a client has connected and its stdin (empty) ended.
nc -l -p 5002 </dev/null >/dev/null
kill "$iperf_server" 2>/dev/null
say "IPERF server done, $(grep -c "^Accepted connection" /tmp/iperf3-server.log) tests served"
