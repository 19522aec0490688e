#!/usr/bin/env bash
# Load and soak test of the release example server over loopback.
#
# usage: scripts/load.sh [PAYLOAD.json [EVENT]]
#   default payload examples/payloads/push.json, event push (the typed-payload handler)
# env: CONNS (256), THREADS (2), DURATION (30s), SOAK (0 = off; seconds of soak after
#      the load run, with RSS sampled every 10 s), PORT (8090)
#
# Starts the server with source-IP checking on against a fixed allow-list of
# 127.0.0.1 (no request to GitHub) and signature checking on, drives it with wrk,
# and prints requests/s, latency, non-2xx and error counts, and the server's RSS.
# Exits non-zero if any request failed or got a non-2xx answer. Installs wrk from
# Debian's packages if it is missing. Everything stops by itself.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PAYLOAD="${1:-$ROOT/examples/payloads/push.json}"
EVENT="${2:-push}"
CONNS="${CONNS:-256}"; THREADS="${THREADS:-2}"; DURATION="${DURATION:-30s}"
SOAK="${SOAK:-0}"; PORT="${PORT:-8090}"
SECRET="load-test-secret"

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
(cd "$ROOT" && cargo build --release -q -p examples --example server)

LOG="$(mktemp /tmp/hookserver-load.XXXXXX.log)"
GITHUB_WEBHOOKS_KEY="$SECRET" HOOKSERVER_ALLOWED_IPS=127.0.0.1/32 HOOKSERVER_ADDR="127.0.0.1:$PORT" \
  RUST_LOG="${RUST_LOG:-info}" "$ROOT/target/release/examples/server" >"$LOG" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done

rss() { awk '/^VmRSS:/{print $2}' "/proc/$PID/status"; }
hwm() { awk '/^VmHWM:/{print $2}' "/proc/$PID/status"; }
export PAYLOAD_FILE="$PAYLOAD" GH_EVENT="$EVENT" DELIVERY="$(cat /proc/sys/kernel/random/uuid)"
SIG256="sha256=$(python3 -c 'import hmac,hashlib,sys; print(hmac.new(sys.argv[1].encode(), open(sys.argv[2],"rb").read(), hashlib.sha256).hexdigest())' "$SECRET" "$PAYLOAD")"
export SIG256

code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$PORT/hooks" \
  -H 'Content-Type: application/json' -H "X-GitHub-Event: $EVENT" -H "X-GitHub-Delivery: $DELIVERY" \
  -H "X-Hub-Signature-256: $SIG256" --data-binary @"$PAYLOAD")
[[ $code == 2* ]] || { echo "pre-check: a signed delivery got $code" >&2; cat "$LOG" >&2; exit 1; }

echo "payload $(basename "$PAYLOAD") ($(stat -c %s "$PAYLOAD") bytes), event $EVENT, $CONNS connections, $THREADS wrk threads"
echo "RSS before: $(rss) kB"
run() { timeout $(( ${1%s} + 30 )) wrk -t"$THREADS" -c"$CONNS" -d"$1" --timeout 10s -s "$ROOT/scripts/load.lua" "http://127.0.0.1:$PORT/hooks" | grep '^RESULT'; }
timeout 20 wrk -t"$THREADS" -c"$CONNS" -d3s -s "$ROOT/scripts/load.lua" "http://127.0.0.1:$PORT/hooks" >/dev/null # warm-up
RESULT=$(run "$DURATION")
echo "$RESULT"
echo "RSS after load: $(rss) kB (peak $(hwm) kB)"
failed=0
[[ $RESULT =~ non2xx=0\ connect_err=0\ read_err=0\ write_err=0\ timeouts=0 ]] || failed=1

if (( SOAK > 0 )); then
  echo "soak: ${SOAK}s, RSS every 10 s"
  (timeout $(( SOAK + 30 )) wrk -t"$THREADS" -c"$CONNS" -d"${SOAK}s" --timeout 10s -s "$ROOT/scripts/load.lua" "http://127.0.0.1:$PORT/hooks" > "$LOG.soak") &
  WRK=$!
  for t in $(seq 10 10 "$SOAK"); do sleep 10; echo "  t=${t}s RSS $(rss) kB"; done
  wait $WRK
  SOAK_RESULT=$(grep '^RESULT' "$LOG.soak")
  echo "$SOAK_RESULT"
  echo "RSS after soak: $(rss) kB (peak $(hwm) kB)"
  [[ $SOAK_RESULT =~ non2xx=0\ connect_err=0\ read_err=0\ write_err=0\ timeouts=0 ]] || failed=1
fi
grep -c "delivery answered" "$LOG" | sed 's/^/log lines: /'
if (( failed )); then echo "FAILED: some requests failed or were not 2xx" >&2; exit 1; fi
echo "OK: every request answered 2xx"
