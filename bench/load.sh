#!/usr/bin/env bash
# Side-by-side load test: the relay, rsyslog and syslog-ng on this machine in one run, with the
# shared harness (../shared/bench: loggen clients, CPU and RSS of each process tree). The relay
# is drained by its "accepted" counter, i.e. measured to the synced-WAL store; the incumbents
# write JSON to a file without fsync. Results go to bench/results-load*.csv; bench/README.md
# has the numbers and how to read them.
#
#   bench/load.sh                      # udp-paced, tcp, tls; 3 repetitions
#   bench/load.sh --quick              # smoke run
#   TCP_CONNS=4 bench/load.sh --transports tcp
#   UDP_PACED_RATE=50000 bench/load.sh --transports udp-paced
set -euo pipefail
cd "$(dirname "$0")/.."
source packaging/dev-env.sh
harness_ready
export RESULTS="${RESULTS:-$PWD/bench/results-load.csv}" RUNS="${RUNS:-$PWD/bench/results-load-runs.csv}"
export RESULTS_APPEND="${RESULTS_APPEND:-1}"
args=(--transports "udp-paced tcp tls" --repeats 3)
exec "$shared/bench/run-incumbents.sh" "${args[@]}" \
  --sut "relay=RELAY_BIN=$CARGO_TARGET_DIR/release/auditrelay exec $shared/bench/sut/relay-template.sh" "$@"
