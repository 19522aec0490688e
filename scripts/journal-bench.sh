#!/usr/bin/env bash
# The journal's cost, side by side in one run: the release example server without a
# journal, with the SQLite journal, and with the PostgreSQL journal (one instance, and
# three instances on one database), all with HOOKSERVER_ACK=journal, alternating, a
# fresh server and a fresh journal per measurement, every request a new delivery
# (UNIQUE_GUID=1 for all, so like is compared with like).
#
# usage: scripts/journal-bench.sh [-r ROUNDS] [-p "ping push big1m"] [-c "none sqlite pg1 pg3"]
# env: DURATION (10s), CONNS (64), THREADS (2), passed to the load kit's run-bench.sh;
#      KIT (../shared/bench beside the repository). pg1/pg3 start a throwaway PostgreSQL
#      with scripts/postgres.sh (or use HOOKSERVER_TEST_POSTGRES's server).
# pg3: three instances on ports 8011-8013 share one database; the load is split the way
#      a round-robin balancer splits connections: three wrk processes started together,
#      CONNS/3 connections and one thread each, one per instance (no balancer's own
#      cost). Its req/s is their sum and its p99 the worst of the three.
# Prints the kit's table, then per payload and configuration the median req/s, the
# ratio to no journal, and p99; and the SQLite journal's size per 10,000 pings.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KIT="${KIT:-$ROOT/../shared/bench}"
ROUNDS=3; PAYLOADS="ping push big1m"; CONFIGS="none sqlite"
while [[ $# -gt 0 ]]; do
  case $1 in
    -r) ROUNDS=$2; shift 2;;
    -p) PAYLOADS=$2; shift 2;;
    -c) CONFIGS=$2; shift 2;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
command -v sqlite3 >/dev/null || { apt-get update -qq && apt-get install -y -qq sqlite3 >/dev/null; }
(cd "$ROOT" && cargo build --release -q -p examples --example server)
SERVER="$ROOT/target/release/examples/server"
CONNS="${CONNS:-64}"

OUT=$(mktemp -d /tmp/journal-bench.XXXXXX); RES=$OUT/results.jsonl
PG_URL=""
if [[ " $CONFIGS " == *" pg"* ]]; then
  # shellcheck source=scripts/postgres.sh
  source "$ROOT/scripts/postgres.sh"
  PG_URL="${HOOKSERVER_TEST_POSTGRES%/*}/hookserver_bench"
fi
PIDS=()
stop() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
}
cleanup() { stop; rm -rf "$OUT/db"; if declare -f hookserver_pg_stop >/dev/null; then hookserver_pg_stop; fi; }
trap cleanup EXIT
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }
fresh_pg() { # a new, empty database for each measurement
  psql "${HOOKSERVER_TEST_POSTGRES}" -q -c "DROP DATABASE IF EXISTS hookserver_bench" -c "CREATE DATABASE hookserver_bench" >/dev/null
}
serve() { # port journal log
  GITHUB_WEBHOOKS_KEY=bench-secret VALIDATE_IP=false HOOKSERVER_ADDR=127.0.0.1:$1 \
    HOOKSERVER_JOURNAL=$2 HOOKSERVER_ACK=journal "$SERVER" >"$3" 2>&1 &
  PIDS+=($!); wait_port "$1"
}
start() { # none | sqlite | pg1 | pg3
  case $1 in
    none) serve 8010 off "$OUT/none.log";;
    sqlite) rm -rf "$OUT/db"; mkdir -p "$OUT/db"; serve 8010 "sqlite:$OUT/db/j.db" "$OUT/sqlite.log";;
    pg1) fresh_pg; serve 8010 "$PG_URL" "$OUT/pg1.log";;
    pg3) fresh_pg; for port in 8011 8012 8013; do serve "$port" "$PG_URL" "$OUT/pg3-$port.log"; done;;
  esac
}
SIZES=$OUT/sizes.txt
for r in $(seq "$ROUNDS"); do
  order="$CONFIGS"; (( r % 2 == 0 )) && order="$(echo "$CONFIGS" | tr ' ' '\n' | tac | tr '\n' ' ')"
  for p in $PAYLOADS; do
    for s in $order; do
      start "$s"
      if [[ $s == pg3 ]]; then
        i=0; loads=()
        for port in 8011 8012 8013; do
          conns=$(( CONNS / 3 + (i < CONNS % 3 ? 1 : 0) ))
          UNIQUE_GUID=1 THREADS=1 CONNS=$conns SERVER_PID=${PIDS[$i]} RESULTS=$RES \
            "$KIT/run-bench.sh" "http://127.0.0.1:$port/hooks" "$p" "pg3:$port r$r" >/dev/null &
          loads+=($!); i=$((i + 1))
        done
        for load in "${loads[@]}"; do wait "$load"; done
      else
        UNIQUE_GUID=1 SERVER_PID=${PIDS[0]} RESULTS=$RES "$KIT/run-bench.sh" http://127.0.0.1:8010/hooks "$p" "$s r$r" >/dev/null
      fi
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
# (config, payload) -> round -> [(rps, p99)]: pg3's three wrk runs of a round add up.
runs = collections.defaultdict(lambda: collections.defaultdict(list))
for line in open(sys.argv[1]):
    r = json.loads(line)
    cfg, rnd = r["label"].rsplit(" ", 1)
    runs[(cfg.split(":")[0], r["payload"])][rnd].append((r["wrk"]["rps"], r["wrk"]["lat_p99_ms"]))
def medians(key):
    rounds = runs[key].values()
    return (statistics.median(sum(x for x, _ in v) for v in rounds),
            statistics.median(max(y for _, y in v) for v in rounds))
for p in ["ping", "push", "big1m"]:
    if ("none", p) not in runs:
        continue
    base, base_p99 = medians(("none", p))
    print(f"JOURNAL {p}: none {base:.0f} req/s, p99 {base_p99:.1f} ms")
    for cfg in ["sqlite", "pg1", "pg3"]:
        if (cfg, p) in runs:
            rps, p99 = medians((cfg, p))
            print(f"JOURNAL {p}: {cfg} {rps:.0f} req/s ({rps / base:.2f} of none), p99 {p99:.1f} ms")
try:
    for line in open(sys.argv[2]):
        rows, size, left = map(int, line.split())
        print(f"JOURNAL SIZE: {rows} pings in {size} bytes = {size / rows * 10000 / 1e6:.1f} MB per 10,000 pings; {left} not done at stop")
except FileNotFoundError:
    pass
PY
