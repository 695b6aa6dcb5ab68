#!/bin/bash
# The CPU a put costs a node with and without --lean-http: one node,
# `quorumq bench put --concurrency=64`, a 2 s warm-up, then the node's CPU
# (utime + stime from /proc/PID/stat) over a 5 s run divided by the puts
# acknowledged in it. net/http and leanhttp twice each, interleaved so
# that a change in the machine's load falls on both. Run from the
# repository root after `make build`; about a minute.
set -u
Q=${QUORUMQ:-bin/quorumq}
ADDR=127.0.0.1:18181
TICK=$(getconf CLK_TCK)
run() { # lean
  local dir=$(mktemp -d)
  $Q serve --data-dir=$dir --queue-addr=$ADDR --pubsub-addr=127.0.0.1:18180 --raft-addr=127.0.0.1:18300 \
    --gossip-addr=127.0.0.1:17946 --log-level=warn --lean-http=$1 > $dir/node.log 2>&1 &
  local pid=$!
  for i in $(seq 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -d x "http://$ADDR/put?queue=warm")" = 200 ] && break
    sleep 0.1
  done
  $Q bench put --targets=http://$ADDR --concurrency=64 --duration=2s --quiet > /dev/null 2>&1
  local before=$(awk '{print $14 + $15}' /proc/$pid/stat)
  local out=$($Q bench put --targets=http://$ADDR --concurrency=64 --duration=5s --json 2>/dev/null)
  local after=$(awk '{print $14 + $15}' /proc/$pid/stat)
  local msgs=$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["msgs"])')
  echo "lean-http=$1 puts/s $(echo "$out" | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["msgs_per_s"]))')" \
    "cpu per put $(( (after - before) * 1000000 / TICK / msgs )) µs  load $(cut -d' ' -f1 /proc/loadavg)"
  kill -TERM $pid; wait $pid
  rm -rf $dir
}
run false; run true; run false; run true
