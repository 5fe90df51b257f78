#!/bin/bash
# usage: conformance/scripts/bench-one-vs-four-nodes.sh BIN
# 1 node x 4 drives vs 4 real nodes x 2 drives: PUT and GET, 64 MiB and 4 KiB, c1 and c16.
# Environment: DUR (per phase, default 5s); SIZES (default 64MiB,4KiB; SIZES=4KiB runs only
# the small-object phases); OPS (default "put get"); PASSES (default 1: pairs of runs, one
# node then four nodes, back to back). With CPU=1 each bench line is followed by the CPU
# (utime+stime, ms) the server processes spent during it, and that per operation (each phase
# then keeps its objects in its own bucket, so a PUT phase's figure is the PUTs' alone; a GET
# phase's includes its prepare).
BIN=$1
export TESSERA_ROOT_USER=benchadmin TESSERA_ROOT_PASSWORD=benchsecret123 RUST_LOG=warn
D=$(mktemp -d /tmp/bench1v4.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill $p 2>/dev/null; done; wait 2>/dev/null; rm -rf "$D"; }
trap cleanup EXIT
ready() { for i in $(seq 1 300); do curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$1/health/ready | grep -q 200 && return 0; sleep 0.2; done; echo "not ready $1"; exit 1; }
cpu_ms() { # utime+stime of the running server processes, in ms
  local t=0 p; for p in "${pids[@]}"; do t=$((t + $(awk '{print $14+$15}' /proc/$p/stat))); done
  echo $((t * 1000 / $(getconf CLK_TCK)))
}
run() {
  for op in ${OPS:-put get}; do
    for size in ${SIZES:-64MiB,4KiB}; do for size in ${size//,/ }; do for conc in 1 16; do
      local before keep=(); before=$(cpu_ms)
      [ -n "$CPU" ] && keep=(--keep --bucket "b-$op-${size,,}-c$conc")
      $BIN bench $op --endpoint http://127.0.0.1:$1 --size $size --concurrency $conc --duration ${DUR:-5s} "${keep[@]}" --quiet --json | sed "s/^/$2 /" | tee $D/last
      if [ -n "$CPU" ]; then
        local spent=$(($(cpu_ms) - before)) ops; ops=$(grep -o '"ops":[0-9]*' $D/last | cut -d: -f2)
        echo "$2 cpu $op $size c$conc: ${spent} ms server CPU, $(awk "BEGIN{printf \"%.3f\", $spent/($ops+0.0001)}") ms/op"
      fi
    done; done; done
  done
}
for pass in $(seq 1 ${PASSES:-1}); do
$BIN server --address 127.0.0.1:19200 "$D/single/d{1...4}" 2>$D/single.log & pids+=($!)
ready 19200; run 19200 1node
kill ${pids[0]}; wait ${pids[0]} 2>/dev/null; pids=()
EP=""; for i in 1 2 3 4; do EP="$EP http://127.0.0.1:1920$i$D/n$i/d{1...2}"; done
for i in 1 2 3 4; do $BIN server --address 127.0.0.1:1920$i $EP 2>$D/n$i.log & pids+=($!); done
for i in 1 2 3 4; do ready 1920$i; done
run 19201 4node
for p in "${pids[@]}"; do kill $p; wait $p 2>/dev/null; done; pids=()
rm -rf "$D/single" "$D"/n?
done
