#!/bin/bash
# The cost of a secured cluster: `quorumq bench` put, mput (batch 100) and
# lease+ack against a 3-node devcluster, open then secured (--secure: HTTPS,
# mutual TLS between nodes, gossip key, tokens), twice each, interleaved so
# that a change in the machine's load falls on both. Run from the
# repository root after `make build`; about 3 minutes.
set -u
Q=${QUORUMQ:-bin/quorumq}
run() { # mode label extra...
  local sec=$1; shift
  local dir=$(mktemp -d)
  local args=""; local scheme=http
  if [ "$sec" = 1 ]; then args="--secure"; scheme=https; fi
  $Q devcluster --nodes=3 --base-dir=$dir --base-port=9100 $args > $dir/dc.log 2>&1 &
  local pid=$!
  for i in $(seq 100); do grep -q "all 3 nodes ready" $dir/dc.log && break; sleep 0.3; done
  local sflags=""
  if [ "$sec" = 1 ]; then sflags="--tls-ca=$dir/certs/ca.pem --token=$(awk '$1=="admin"{print $3}' $dir/certs/tokens)"; fi
  echo "== secure=$sec load $(cut -d' ' -f1-3 /proc/loadavg)"
  $Q bench put --targets=$scheme://127.0.0.1:9101 --concurrency=64 --duration=10s --quiet $sflags 2>&1 | grep -E "msgs/s|p50|p99" | head -3
  $Q bench mput --targets=$scheme://127.0.0.1:9101 --concurrency=16 --batch=100 --duration=10s --quiet $sflags 2>&1 | grep -E "msgs/s|p50|p99" | head -3
  $Q bench lease --targets=$scheme://127.0.0.1:9101 --concurrency=64 --duration=10s --prefill=300000 --quiet $sflags 2>&1 | grep -E "msgs/s|p50|p99" | head -3
  kill -TERM $pid; wait $pid
  rm -rf $dir
}
run 0; run 1; run 0; run 1
