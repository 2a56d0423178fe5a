#!/usr/bin/env bash
# Load test of federator's DNS server against NSD on the same 10k-name zone.
# The server runs pinned to core 0, dnsperf to core 1 (needs 2 cores, dnsperf and nsd from
# Debian: apt-get install dnsperf nsd). Prints throughput at full load, latency percentiles
# and the server's CPU time per query at a fixed 50k queries/s, plus RSS. At full load one
# dnsperf core may be the bottleneck of a fast server; CPU per query is then the comparison.
# SERVER=path benchmarks another build of bench_server (say, an older commit's).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
hosts="${HOSTS:-10000}"
seconds="${SECONDS_PER_RUN:-15}"
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
for tool in dnsperf nsd taskset; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install dnsperf nsd util-linux" >&2; exit 1; }
done

if [ -z "${SERVER:-}" ]; then
  (cd "$root" && cargo build -q --release -p federator-dns --example bench_server)
fi
server="${SERVER:-$root/target/release/examples/bench_server}"

# Queries: every name once, shuffled, A records.
seq 0 $((hosts - 1)) | shuf --random-source=<(yes) | sed 's/.*/prod.svc-&.global A/' >"$work/queries"

# NSD with the same names and addresses.
{
  echo '$ORIGIN global.'
  echo '$TTL 5'
  echo '@ IN SOA ns.global. hostmaster.global. 1 60 30 600 5'
  echo '@ IN NS ns.global.'
  for i in $(seq 0 $((hosts - 1))); do
    n=$((0xf0000000 + i + 1))
    echo "prod.svc-$i IN A $((n >> 24 & 255)).$((n >> 16 & 255)).$((n >> 8 & 255)).$((n & 255))"
  done
} >"$work/global.zone"
cat >"$work/nsd.conf" <<CONF
server:
  ip-address: 127.0.0.1@5398
  server-count: 1
  username: ""
  zonesdir: "$work"
  zonelistfile: "$work/zone.list"
  database: ""
  pidfile: "$work/nsd.pid"
  xfrdfile: "$work/xfrd.state"
  logfile: "$work/nsd.log"
  verbosity: 0
remote-control:
  control-enable: no
zone:
  name: global
  zonefile: global.zone
CONF

wait_ready() { for _ in $(seq 100); do dig +time=1 +tries=1 @127.0.0.1 -p "$1" prod.svc-0.global >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "server on $1 not answering" >&2; exit 1; }
rss() { awk '/VmRSS/ {printf "%.1f MiB", $2/1024}' "/proc/$1/status"; }
# CPU clock ticks (user + system) of a process and its descendants (NSD's server process
# is a grandchild).
tree() { echo "$1"; for c in $(pgrep -P "$1"); do tree "$c"; done; }
# utime and stime are fields 14 and 15 of /proc/PID/stat, 12 and 13 after "PID (comm) "
# (NSD's comm holds a space).
ticks() { for p in $(tree "$1"); do sed 's/.*) //' "/proc/$p/stat"; done | awk '{s += $12 + $13} END {print s}'; }

measure() { # name port pid
  local name=$1 port=$2 pid=$3
  local full
  full=$(taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -d "$work/queries" -l "$seconds" -c 4 -q 500 2>&1)
  local qps lost
  qps=$(echo "$full" | awk '/Queries per second/ {print $4}')
  lost=$(echo "$full" | awk '/Queries lost/ {print $3, $4}')
  # Per-query latencies (-v) go to a file, not a pipe, so writing them never stalls dnsperf.
  local t0 t1 hz
  hz=$(getconf CLK_TCK)
  t0=$(ticks "$pid")
  taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -d "$work/queries" -l "$seconds" -c 4 -Q 50000 -v >"$work/verbose.$name" 2>/dev/null
  t1=$(ticks "$pid")
  awk '$1 == ">" {print $NF}' "$work/verbose.$name" | sort -g >"$work/lat.$name"
  local count p50 p99 p999
  count=$(wc -l <"$work/lat.$name")
  p50=$(awk -v n="$count" 'NR == int(n*0.50) {printf "%.3f", $1*1000}' "$work/lat.$name")
  p99=$(awk -v n="$count" 'NR == int(n*0.99) {printf "%.3f", $1*1000}' "$work/lat.$name")
  p999=$(awk -v n="$count" 'NR == int(n*0.999) {printf "%.3f", $1*1000}' "$work/lat.$name")
  local cpu
  cpu=$(awk -v t=$((t1 - t0)) -v hz="$hz" -v n="$count" 'BEGIN {printf "%.1f", t / hz * 1e6 / n}')
  echo "| $name | $qps | $lost | $p50 ms | $p99 ms | $p999 ms | $cpu us | $(rss "$pid") |"
}

echo "| server | queries/s (full load, 1 core) | lost | p50 at 50k q/s | p99 at 50k q/s | p99.9 at 50k q/s | CPU per query at 50k q/s | RSS |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
taskset -c 0 "$server" 127.0.0.1:5399 "$hosts" >"$work/federator.log" 2>&1 &
fpid=$!
wait_ready 5399
ours=$(measure federator-dns 5399 $fpid)
echo "$ours"
kill $fpid; wait $fpid 2>/dev/null || true

taskset -c 0 nsd -d -c "$work/nsd.conf" >"$work/nsd.out" 2>&1 &
npid=$!
wait_ready 5398
theirs=$(measure "nsd $(nsd -v 2>&1 | awk 'NR==1 {print $3}')" 5398 $npid)
echo "$theirs"
kill $npid; wait $npid 2>/dev/null || true

a=$(echo "$ours" | awk -F'|' '{print $3}'); b=$(echo "$theirs" | awk -F'|' '{print $3}')
awk -v a="$a" -v b="$b" 'BEGIN {printf "\nfederator-dns / nsd throughput: %.2f\n", a/b}'
