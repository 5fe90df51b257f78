#!/usr/bin/env bash
# Throughput of a tessera binary (curl, SigV4, UNSIGNED-PAYLOAD) against plain file copies on
# the same disk in the same run (dd+fsync for PUT, cat for GET), keep-alive small GETs against
# health probes, and the server peak RSS. Usage: throughput.sh PATH/TO/tessera [SIZE_MB]
# Needs curl (>= 7.75 for --aws-sigv4) and bc. Works in a scratch dir next to the script
# (./bench-work), removed at the end.
set -euo pipefail
BIN=$(realpath "$1"); SIZE_MB=${2:-1024}
WORK="$(cd "$(dirname "$0")" && pwd)/bench-work"; mkdir -p "$WORK"; cd "$WORK"
rm -rf data base out.txt err.txt; mkdir -p base
head -c $((SIZE_MB<<20)) /dev/urandom > obj.bin
RUST_LOG=warn "$BIN" server --address 127.0.0.1:0 ./data/d{1...4} > out.txt 2> err.txt &
PID=$!; trap 'kill $PID 2>/dev/null; cd /; rm -rf "$WORK"' EXIT
for i in $(seq 50); do grep -q Endpoint: out.txt && break; sleep 0.1; done
EP=$(grep Endpoint: out.txt | sed 's/Endpoint: //')
C="curl -sf --aws-sigv4 aws:amz:us-east-1:s3 --user tesseraadmin:tesseraadmin -H x-amz-content-sha256:UNSIGNED-PAYLOAD"
$C -X PUT $EP/bench >/dev/null
peak=0; ( while kill -0 $PID 2>/dev/null; do r=$(awk '/VmRSS/{print $2}' /proc/$PID/status 2>/dev/null || echo 0); [ "${r:-0}" -gt "$peak" ] && peak=$r && echo $peak > peak.txt; sleep 0.05; done ) &
t() { local s=$(date +%s.%N); "$@" >/dev/null; echo "$(date +%s.%N) - $s" | bc; }
for round in 1 2; do
  b_w=$(t dd if=obj.bin of=base/copy bs=1M conv=fsync status=none)
  t_w=$(t $C -T obj.bin $EP/bench/obj)
  b_r=$(t sh -c "cat base/copy > /dev/null")
  t_r=$(t $C -o /dev/null $EP/bench/obj)
  echo "round $round: PUT ${SIZE_MB}MiB tessera ${t_w}s vs dd+fsync ${b_w}s (ratio $(echo "scale=2; $t_w/$b_w" | bc)); GET tessera ${t_r}s vs cat ${b_r}s (ratio $(echo "scale=2; $t_r/$b_r" | bc))"
done
$C -T <(head -c 4096 obj.bin) $EP/bench/small >/dev/null
N=300
urls=$(for i in $(seq $N); do printf "%s/bench/small " $EP; done)
hurls=$(for i in $(seq $N); do printf "%s/minio/health/live " $EP; done)
t_s=$(t $C -o /dev/null $urls)
t_h=$(t curl -sf -o /dev/null $hurls)
echo "keep-alive: $N x 4KiB signed GET ${t_s}s ($(echo "$N/$t_s" | bc) req/s) vs $N health GETs ${t_h}s ($(echo "$N/$t_h" | bc) req/s)"
echo "server peak RSS: $(( $(cat peak.txt) / 1024 )) MiB"
