#!/usr/bin/env bash
# The journal's cost, side by side in one run: the release example server without a
# journal and with the SQLite journal (HOOKSERVER_ACK=journal), alternating, a fresh
# server and a fresh journal file per measurement, every request a new delivery
# (UNIQUE_GUID=1 for both, so like is compared with like).
#
# usage: scripts/journal-bench.sh [-r ROUNDS] [-p "ping push big1m"]
# env: DURATION (10s), CONNS (64), THREADS (2), passed to the load kit's run-bench.sh;
#      KIT (../shared/bench beside the repository).
# Prints the kit's table, then per payload the median req/s ratio journal/none and
# p99s, and the journal's size per 10,000 pings (file + WAL, after a checkpoint).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KIT="${KIT:-$ROOT/../shared/bench}"
ROUNDS=3; PAYLOADS="ping push big1m"
while [[ $# -gt 0 ]]; do
  case $1 in -r) ROUNDS=$2; shift 2;; -p) PAYLOADS=$2; shift 2;; *) echo "unknown option $1" >&2; exit 2;; esac
done
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
command -v sqlite3 >/dev/null || { apt-get update -qq && apt-get install -y -qq sqlite3 >/dev/null; }
(cd "$ROOT" && cargo build --release -q -p examples --example server)
SERVER="$ROOT/target/release/examples/server"

OUT=$(mktemp -d /tmp/journal-bench.XXXXXX); RES=$OUT/results.jsonl
PID=""
stop() { if [[ -n $PID ]]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi; PID=""; }
trap 'stop; rm -rf "$OUT/db"' EXIT
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }
start() { # none | sqlite
  local journal=off
  if [[ $1 == sqlite ]]; then rm -rf "$OUT/db"; mkdir -p "$OUT/db"; journal="sqlite:$OUT/db/j.db"; fi
  GITHUB_WEBHOOKS_KEY=bench-secret VALIDATE_IP=false HOOKSERVER_ADDR=127.0.0.1:8010 \
    HOOKSERVER_JOURNAL=$journal HOOKSERVER_ACK=journal "$SERVER" >"$OUT/$1.log" 2>&1 &
  PID=$!; wait_port 8010
}
SIZES=$OUT/sizes.txt
for r in $(seq "$ROUNDS"); do
  order="none sqlite"; (( r % 2 == 0 )) && order="sqlite none"
  for p in $PAYLOADS; do
    for s in $order; do
      start "$s"
      UNIQUE_GUID=1 SERVER_PID=$PID RESULTS=$RES "$KIT/run-bench.sh" http://127.0.0.1:8010/hooks "$p" "$s r$r" >/dev/null
      if [[ $s == sqlite && $p == ping ]]; then
        sleep 1 # let the workers finish what was queued
        stop
        sqlite3 "$OUT/db/j.db" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
        rows=$(sqlite3 "$OUT/db/j.db" "SELECT COUNT(*) FROM deliveries")
        left=$(sqlite3 "$OUT/db/j.db" "SELECT COUNT(*) FROM deliveries WHERE state <> 'done'")
        bytes=$(du -cb "$OUT/db/j.db"* | tail -1 | cut -f1)
        echo "$rows $bytes $left" >> "$SIZES"
      fi
      stop
    done
  done
done
python3 "$KIT/summarize.py" "$RES"
python3 - "$RES" "$SIZES" <<'PY'
import json, sys, collections, statistics
rps = collections.defaultdict(list); p99 = collections.defaultdict(list)
for line in open(sys.argv[1]):
    r = json.loads(line); cfg = r["label"].rsplit(" ", 1)[0]
    rps[(cfg, r["payload"])].append(r["wrk"]["rps"]); p99[(cfg, r["payload"])].append(r["wrk"]["lat_p99_ms"])
for p in ["ping", "push", "big1m"]:
    if (("none", p) in rps) and (("sqlite", p) in rps):
        ratio = statistics.median(rps[("sqlite", p)]) / statistics.median(rps[("none", p)])
        print(f"JOURNAL {p}: sqlite/none req/s {ratio:.2f} (median {statistics.median(rps[('sqlite', p)]):.0f} vs {statistics.median(rps[('none', p)]):.0f}); "
              f"p99 ms sqlite {statistics.median(p99[('sqlite', p)]):.1f}, none {statistics.median(p99[('none', p)]):.1f}")
try:
    for line in open(sys.argv[2]):
        rows, size, left = map(int, line.split())
        print(f"JOURNAL SIZE: {rows} pings in {size} bytes = {size / rows * 10000 / 1e6:.1f} MB per 10,000 pings; {left} not done at stop")
except FileNotFoundError:
    pass
PY
