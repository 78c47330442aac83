#!/usr/bin/env bash
# Replication cost, side by side in one run: rsyslog writing JSON to a file (no fsync), the
# relay as a one-member cluster (the default), and a three-node cluster on this machine (every
# batch fsync'd in the Raft logs of two of three nodes before it counts, then applied to each
# node's store). loggen sends N_TCP messages over TCP to rsyslog or to node 1; the relay is
# drained by node 1's accepted counter. CPU and memory are of the whole process group (all
# three nodes). p99 commit latency comes from node 1's commit histogram (bucket bounds).
#
#   bench/cluster.sh                       # N_TCP=1000000, 3 repetitions
#   N_TCP=200000 REPEATS=1 bench/cluster.sh
# Results: bench/results-cluster.csv (medians), bench/results-cluster-latency.csv; summary in
# bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source packaging/dev-env.sh
harness_ready
metrics=$(mktemp -d /tmp/auditrelay-cluster-bench.XXXXXX)
# Each run leaves its stores behind (a GB or more per node for a million messages): the work
# directory goes when the script ends.
export WORK=${WORK:-$metrics/work}
trap 'rm -rf "$metrics"' EXIT
hook="RELAY_BIN=$CARGO_TARGET_DIR/release/auditrelay METRICS_DIR=$metrics exec $PWD/bench/sut/relay-nodes.sh"
RESULTS=${RESULTS:-$PWD/bench/results-cluster.csv} RUNS=${RUNS:-$PWD/bench/results-cluster-runs.csv} \
  SYSTEMS=rsyslog REPEATS=${REPEATS:-3} \
  "$shared/bench/run-incumbents.sh" --transports tcp \
  --sut "relay-1node=NODES=1 $hook" --sut "relay-3node=NODES=3 $hook" "$@"

# p99 of each run's commit latency, from the histogram's cumulative buckets.
latency=${LATENCY:-$PWD/bench/results-cluster-latency.csv}
[[ -s $latency ]] || echo "date,system,batches,mean_ms,p50_le_ms,p99_le_ms" > "$latency"
/usr/bin/python3 - "$metrics" "$latency" <<'PY'
import glob, os, re, sys, datetime
out = open(sys.argv[2], "a")
for path in sorted(glob.glob(os.path.join(sys.argv[1], "*.prom"))):
    name = os.path.basename(path).rsplit("-", 1)[0]
    buckets, total, count = [], 0.0, 0
    for line in open(path):
        m = re.match(r'auditrelay_commit_duration_seconds_bucket\{le="([^"]+)"\} (\S+)', line)
        if m:
            buckets.append((float("inf") if m[1] == "+Inf" else float(m[1]), float(m[2])))
        elif line.startswith("auditrelay_commit_duration_seconds_sum "):
            total = float(line.split()[1])
        elif line.startswith("auditrelay_commit_duration_seconds_count "):
            count = int(float(line.split()[1]))
    if not count:
        continue
    def quantile(q):
        return next(le for le, c in sorted(buckets) if c >= q * count) * 1000
    row = [datetime.date.today().isoformat(), name, count, f"{total / count * 1000:.2f}",
           f"{quantile(0.5):g}", f"{quantile(0.99):g}"]
    print("commit latency:", ",".join(map(str, row)))
    out.write(",".join(map(str, row)) + "\n")
PY
