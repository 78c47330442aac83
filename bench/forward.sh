#!/usr/bin/env bash
# Forwarding throughput, side by side: loggen sends N RFC 5424 messages over TCP (octet
# counting) into a relay, which forwards them over TCP (octet counting, RFC 5424) to one
# syslog-ng receiver that writes each message as a line. Relays compared: auditrelay
# (--forward syslog+tcp://, every message committed to its synced-WAL store first), rsyslog
# (imtcp -> omfwd TCP_Framing=octet-counted) and syslog-ng (syslog() -> syslog(), flow-control).
# Time runs from loggen's start until the receiver holds N lines.
#
# A second measurement, "auditrelay-drain", times forwarding alone: N records already in the
# store (loaded with no destination), then the relay restarted with --forward; time until the
# receiver holds N lines. That is the forwarder's own throughput, the rate at which a
# destination that was down catches up. "auditrelay-drain-null" (not in the default set) does
# the same into a socat sink that discards everything, done when the relay's acknowledged
# counter reaches N: the forwarder's ceiling without syslog-ng's receive cost.
#
#   bench/forward.sh                 # N=300000, 3 repetitions
#   N=50000 REPEATS=1 bench/forward.sh
# Results: bench/results-forward.csv (one row per run); bench/README.md has the summary.
set -euo pipefail
cd "$(dirname "$0")/.."
source packaging/dev-env.sh
ensure_rust
ensure_build_deps
ensure_test_peers
release_build
RELAY=$CARGO_TARGET_DIR/release/auditrelay
N=${N:-300000}
REPEATS=${REPEATS:-3}
SIZE=${SIZE:-256}
RESULTS=${RESULTS:-$PWD/bench/results-forward.csv}
RSYSLOG_ROOT=${AUDITRELAY_RSYSLOG_ROOT:-/var/tmp/auditrelay-peers/rsyslog-root}
IN_PORT=${IN_PORT:-25601} OUT_PORT=${OUT_PORT:-25602} HTTP_PORT=${HTTP_PORT:-25900}
work=$(mktemp -d /tmp/auditrelay-forward-bench.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
[[ -s $RESULTS ]] || echo "date,system,n,seconds,msg_per_s,relay_cpu_s,relay_cpu_us_per_msg,receiver_cpu_s,lines,unique" > "$RESULTS"

cpu_of() { /usr/bin/python3 - "$1" <<'PY'
import os, sys
root = int(sys.argv[1]); kids = {}; ticks = {}
for d in os.listdir('/proc'):
    if not d.isdigit(): continue
    try:
        s = open(f'/proc/{d}/stat').read(); r = s[s.rindex(')') + 2:].split()
        kids.setdefault(int(r[1]), []).append(int(d)); ticks[int(d)] = sum(int(x) for x in r[11:15])
    except (OSError, ValueError): pass
total, todo = 0, [root]
while todo:
    p = todo.pop(); total += ticks.get(p, 0); todo += kids.get(p, [])
print(total / os.sysconf('SC_CLK_TCK'))
PY
}

wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

start_receiver() { # dir
  cat > "$1/recv.conf" <<CONF
@version: 3.38
options { stats-freq(0); use-dns(no); dns-cache(no); keep-hostname(yes); };
source s { syslog(ip("127.0.0.1") port($OUT_PORT) transport("tcp") flags(no-parse) max-connections(10) log-iw-size(100000)); };
destination d { file("$1/received.log" template("\$MSG\n") log-fifo-size(100000)); };
log { source(s); destination(d); flags(flow-control); };
CONF
  syslog-ng -F --no-caps -f "$1/recv.conf" -p "$1/recv.pid" -c "$1/recv.ctl" -R "$1/recv.persist" 2>"$1/recv.log" &
  RECV_PID=$!
  wait_port "$OUT_PORT"
}

start_sut() { # system dir [extra relay args]
  local sys=$1 dir=$2; shift 2
  case $sys in
    auditrelay|auditrelay-drain)
      "$RELAY" run --data-dir "$dir/db" --http "127.0.0.1:$HTTP_PORT" --listen "tcp://127.0.0.1:$IN_PORT" "$@" 2>"$dir/sut.log" & ;;
    rsyslog)
      cat > "$dir/rsyslog.conf" <<CONF
global(workDirectory="$dir")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="$IN_PORT" ruleset="fwd")
ruleset(name="fwd") {
  action(type="omfwd" target="127.0.0.1" port="$OUT_PORT" protocol="tcp" TCP_Framing="octet-counted"
         template="RSYSLOG_SyslogProtocol23Format" action.resumeRetryCount="-1" action.resumeInterval="1")
}
CONF
      "$RSYSLOG_ROOT/usr/sbin/rsyslogd" -n -f "$dir/rsyslog.conf" -i "$dir/rsyslogd.pid" \
        -M "$RSYSLOG_ROOT/usr/lib/x86_64-linux-gnu/rsyslog" 2>"$dir/sut.log" & ;;
    syslog-ng)
      cat > "$dir/sut.conf" <<CONF
@version: 3.38
options { stats-freq(0); use-dns(no); dns-cache(no); keep-hostname(yes); };
source s { syslog(ip("127.0.0.1") port($IN_PORT) transport("tcp") max-connections(10) log-iw-size(100000)); };
destination d { syslog("127.0.0.1" port($OUT_PORT) transport("tcp") log-fifo-size(100000)); };
log { source(s); destination(d); flags(flow-control); };
CONF
      syslog-ng -F --no-caps -f "$dir/sut.conf" -p "$dir/sut.pid" -c "$dir/sut.ctl" -R "$dir/sut.persist" 2>"$dir/sut.log" & ;;
  esac
  SUT_PID=$!
  wait_port "$IN_PORT"
}

stop() { kill -TERM "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

lines_of() { [[ -f $1 ]] && wc -l < "$1" || echo 0; }

# Waits until $1 has N lines (or has not grown for 15 s); prints the seconds since $2.
drain() {
  local file=$1 t0=$2 last=-1 still=0 n
  while :; do
    n=$(lines_of "$file")
    (( n >= N )) && break
    if (( n == last )); then still=$((still + 1)); (( still > 300 )) && break; else still=0; fi
    last=$n; sleep 0.05
  done
  echo "$(date +%s.%N) - $t0" | bc
}

acked_of() { { curl -fs "127.0.0.1:$HTTP_PORT/metrics" 2>/dev/null || true; } |
  awk '/^auditrelay_forward_acknowledged_messages_total/ {s+=$2} END {print s+0}'; }

run_one() { # system rep
  local sys=$1 dir=$work/$1-$2
  mkdir -p "$dir"
  if [[ $sys == auditrelay-drain-null ]]; then
    socat -u "TCP-LISTEN:$OUT_PORT,bind=127.0.0.1,reuseaddr,fork" OPEN:/dev/null & RECV_PID=$!
    wait_port "$OUT_PORT"
  else
    start_receiver "$dir"
  fi
  if [[ $sys == auditrelay-drain || $sys == auditrelay-drain-null ]]; then
    start_sut auditrelay "$dir"
    loggen -i -S -P -s "$SIZE" -r 1000000000 -n "$N" -I 300 -Q 127.0.0.1 "$IN_PORT" >/dev/null 2>&1
    until curl -fs "127.0.0.1:$HTTP_PORT/metrics" | awk -v n="$N" '/^auditrelay_accepted_messages_total/ {s+=$2} END {exit !(s>=n)}'; do sleep 0.1; done
    stop "$SUT_PID"
    start_sut auditrelay-drain "$dir" --forward "syslog+tcp://127.0.0.1:$OUT_PORT${FWD_QUERY:-}"
    local t0 cpu0 rcpu0; t0=$(date +%s.%N); cpu0=$(cpu_of "$SUT_PID"); rcpu0=$(cpu_of "$RECV_PID")
  else
    local fwd=()
    [[ $sys == auditrelay ]] && fwd=(--forward "syslog+tcp://127.0.0.1:$OUT_PORT${FWD_QUERY:-}")
    start_sut "$sys" "$dir" "${fwd[@]}"
    local t0 cpu0 rcpu0; t0=$(date +%s.%N); cpu0=$(cpu_of "$SUT_PID"); rcpu0=$(cpu_of "$RECV_PID")
    loggen -i -S -P -s "$SIZE" -r 1000000000 -n "$N" -I 300 -Q 127.0.0.1 "$IN_PORT" >/dev/null 2>&1
  fi
  local secs cpu1 rcpu1 lines unique
  if [[ $sys == auditrelay-drain-null ]]; then
    until (( $(acked_of) >= N )); do sleep 0.02; done
    secs=$(echo "$(date +%s.%N) - $t0" | bc)
    lines=$(acked_of) unique=-          # the sink discards: the relay's count is all there is
  else
    secs=$(drain "$dir/received.log" "$t0")
  fi
  cpu1=$(cpu_of "$SUT_PID"); rcpu1=$(cpu_of "$RECV_PID")
  stop "$SUT_PID"; stop "$RECV_PID"
  if [[ $sys != auditrelay-drain-null ]]; then
    lines=$(lines_of "$dir/received.log")
    unique=$(grep -o 'seq: [0-9]*' "$dir/received.log" | sort -u | wc -l)
  fi
  local cpu rate us
  cpu=$(echo "$cpu1 - $cpu0" | bc); rate=$(echo "$N / $secs" | bc); us=$(echo "scale=2; $cpu * 1000000 / $N" | bc)
  echo "$(date -u +%FT%TZ),$sys,$N,$secs,$rate,$cpu,$us,$(echo "$rcpu1 - $rcpu0" | bc),$lines,$unique" | tee -a "$RESULTS"
  rm -rf "$dir"
}

for rep in $(seq "$REPEATS"); do
  for sys in ${SYSTEMS:-auditrelay rsyslog syslog-ng auditrelay-drain}; do
    run_one "$sys" "$rep"
  done
done
