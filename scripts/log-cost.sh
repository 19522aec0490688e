#!/usr/bin/env bash
# What the per-delivery log line costs: the release example server with its line
# (RUST_LOG unset: info) and without it (RUST_LOG=warn), beside the load kit's typed
# floor (`tfloor`), alternating, a fresh server per measurement, in one run.
#
# usage: scripts/log-cost.sh [-r ROUNDS] [-p "ping push"]
#   builds target/release/examples/server first; env DURATION, CONNS, THREADS go to
#   the kit's run-bench.sh (10s, 64, 2). Prints the kit's table and, per payload, the
#   medians' ratios info/warn (1.00: the line is free) and info/tfloor.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KIT="$ROOT/../shared/bench"
ROUNDS=3; PAYLOADS="ping push"
while [[ $# -gt 0 ]]; do
  case $1 in -r) ROUNDS=$2; shift 2;; -p) PAYLOADS=$2; shift 2;; *) echo "unknown option $1" >&2; exit 2;; esac
done
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
(cd "$ROOT" && cargo build --release -q -p examples --example server)
FLOOR_TARGET=${FLOOR_TARGET:-/tmp/hookbench-floor-target}
(cd "$KIT/peers/axum-floor" && CARGO_TARGET_DIR=$FLOOR_TARGET cargo build --release -q)
OUT=$(mktemp -d /tmp/hookserver-log-cost.XXXXXX); RES=$OUT/results.jsonl
PID=""
stop() { if [[ -n $PID ]]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi; PID=""; }
trap stop EXIT
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }
start() { # name
  local log=(env -u RUST_LOG)
  case $1 in
    tfloor) TYPED=1 PORT=8004 "$FLOOR_TARGET/release/axum-floor" >"$OUT/tfloor.log" 2>&1 & PID=$!; wait_port 8004; URL=http://127.0.0.1:8004/hooks; return;;
    warn) log=(env RUST_LOG=warn);;
  esac
  "${log[@]}" GITHUB_WEBHOOKS_KEY=bench-secret VALIDATE_IP=false HOOKSERVER_ADDR=127.0.0.1:8010 \
    HOOKSERVER_JOURNAL=off "$ROOT/target/release/examples/server" >"$OUT/$1.log" 2>&1 & PID=$!
  wait_port 8010; URL=http://127.0.0.1:8010/hooks
}
for r in $(seq "$ROUNDS"); do
  order="tfloor info warn"; (( r % 2 == 0 )) && order="warn info tfloor"
  for p in $PAYLOADS; do
    for s in $order; do
      start "$s"
      SERVER_PID=$PID RESULTS=$RES "$KIT/run-bench.sh" "$URL" "$p" "$s r$r" >/dev/null
      stop
    done
  done
done
python3 "$KIT/summarize.py" "$RES"
python3 - "$RES" <<'PY'
import json, sys, collections, statistics
rps = collections.defaultdict(list)
for line in open(sys.argv[1]):
    r = json.loads(line)
    rps[(r["label"].split()[0], r["payload"])].append(r["wrk"]["rps"])
for p in sorted({p for _, p in rps}):
    m = {s: statistics.median(rps[(s, p)]) for s in ("info", "warn", "tfloor") if rps[(s, p)]}
    print(f"RATIO {p}: info/warn {m['info'] / m['warn']:.2f}  info/tfloor {m['info'] / m['tfloor']:.2f}  warn/tfloor {m['warn'] / m['tfloor']:.2f}")
PY
echo "raw results: $RES"
