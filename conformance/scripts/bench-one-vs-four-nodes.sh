#!/bin/bash
# usage: conformance/scripts/bench-one-vs-four-nodes.sh BIN  (DUR=5s by default)
# 1 node x 4 drives vs 4 real nodes x 2 drives: PUT and GET, 64 MiB and 4 KiB, c1 and c16
BIN=$1
export TESSERA_ROOT_USER=benchadmin TESSERA_ROOT_PASSWORD=benchsecret123 RUST_LOG=warn
D=$(mktemp -d /tmp/bench1v4.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill $p 2>/dev/null; done; wait 2>/dev/null; rm -rf "$D"; }
trap cleanup EXIT
ready() { for i in $(seq 1 300); do curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$1/health/ready | grep -q 200 && return 0; sleep 0.2; done; echo "not ready $1"; exit 1; }
run() {
  for op in put get; do
    $BIN bench $op --endpoint http://127.0.0.1:$1 --size 64MiB,4KiB --concurrency 1,16 --duration ${DUR:-5s} --quiet --json | sed "s/^/$2 /"
  done
}
$BIN server --address 127.0.0.1:19200 "$D/single/d{1...4}" 2>$D/single.log & pids+=($!)
ready 19200; run 19200 1node
kill ${pids[0]}; wait ${pids[0]} 2>/dev/null; pids=()
EP=""; for i in 1 2 3 4; do EP="$EP http://127.0.0.1:1920$i$D/n$i/d{1...2}"; done
for i in 1 2 3 4; do $BIN server --address 127.0.0.1:1920$i $EP 2>$D/n$i.log & pids+=($!); done
for i in 1 2 3 4; do ready 1920$i; done
run 19201 4node
