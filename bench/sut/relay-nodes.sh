#!/usr/bin/env bash
# Hook for ../shared/bench/run-incumbents.sh: auditrelay as NODES processes on 127.0.0.1, a
# one-member relay (NODES=1, no [cluster]: the default) or a three-node cluster (NODES=3). Load
# goes to node 1, whose listener is the harness's port; node 1 gets a short election timeout
# so that it becomes the leader (load through a follower adds a hop). The harness drains by
# node 1's accepted counter (committed by the cluster: in a majority's fsync'd Raft logs) and
# measures CPU and memory of the whole process group, so all nodes count.
# With METRICS_DIR set, node 1's /metrics is copied to METRICS_DIR/NAME-TIME.prom every half
# second, for the commit latency histogram.
set -euo pipefail
: "${RELAY_BIN:?set RELAY_BIN to the auditrelay binary}" "${NODES:?set NODES to 1 or 3}"
addr=$SUT_LISTEN_ADDR
peer_base=${PEER_BASE:-17100}
printf 'SUT_DRAIN_URL=http://%s:%s/metrics\nSUT_DRAIN_METRIC=%s\n' "$addr" "$SUT_HTTP_PORT" \
  '~^(?!.*byte).*accepted' > "$SUT_DRAIN_FILE"
pids=()
for ((n = 1; n <= NODES; n++)); do
  conf=$SUT_WORKDIR/node$n.toml
  if ((n == 1)); then
    tcp=$SUT_TCP_PORT http=$SUT_HTTP_PORT timeout=400
  else
    tcp=$((SUT_TCP_PORT + 20 + n)) http=$((SUT_HTTP_PORT + 20 + n)) timeout=3000
  fi
  {
    printf '[[listener]]\nname = "tcp"\nurl = "tcp://%s:%s"\n' "$addr" "$tcp"
    if ((NODES > 1)); then
      printf '[cluster]\nnode_id = %s\nlisten = "%s:%s"\nheartbeat_ms = 100\nelection_timeout_ms = %s\n' \
        "$n" "$addr" $((peer_base + n)) "$timeout"
      for ((m = 1; m <= NODES; m++)); do
        ((m == n)) || printf '[[cluster.peer]]\nid = %s\naddress = "%s:%s"\n' "$m" "$addr" $((peer_base + m))
      done
    fi
    # RELAY_EXTRA_TOML: more configuration for every node (e.g. '[batch]\nmax_in_flight = 2').
    [[ -z ${RELAY_EXTRA_TOML:-} ]] || printf '%b\n' "$RELAY_EXTRA_TOML"
  } > "$conf"
  "$RELAY_BIN" run --config "$conf" --data-dir "$SUT_WORKDIR/node$n" --http "$addr:$http" \
    2> "$SUT_WORKDIR/node$n.log" &
  pids+=($!)
done
if [[ -n ${METRICS_DIR:-} ]]; then
  out=$METRICS_DIR/$SUT_NAME-$(date +%s%N).prom
  while sleep 0.5; do
    curl -sf "http://$addr:$SUT_HTTP_PORT/metrics" > "$out.tmp" && mv "$out.tmp" "$out"
  done &
  pids+=($!)
fi
trap 'kill -TERM "${pids[@]}" 2>/dev/null; wait' TERM INT
wait -n "${pids[@]}"
