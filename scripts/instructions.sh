#!/usr/bin/env bash
# User-space instructions per delivery of a webhook receiver, counted by callgrind: the
# figure that stays put on a shared machine where req/s moves by 20% between runs.
#
# usage: scripts/instructions.sh [-p PAYLOAD] [-d DURATION] -- COMMAND [ARG...]
#   PAYLOAD   ping | push | big1m from ../shared/bench/payloads (default ping)
#   DURATION  how long wrk drives the server (default 10s; under callgrind a server
#             answers a few hundred deliveries a second, so that is ~10,000 of them)
#   COMMAND   the server, started with GITHUB_WEBHOOKS_KEY=bench-secret VALIDATE_IP=false
#             HOOKSERVER_ADDR=127.0.0.1:8020 PORT=8020 (the load kit's floor reads PORT)
#
# Counters are zeroed once the server listens, so start-up is not counted; kernel time
# (system calls, wake-ups) is not counted at all: compare like with like. Prints
# `requests=N instructions=M per_request=M/N`. Installs valgrind and wrk from Debian's
# packages if missing. Example, hookserver beside the load kit's floor:
#   scripts/instructions.sh -- target/release/examples/server
#   scripts/instructions.sh -- /tmp/hookbench-floor-target/release/axum-floor
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KIT="$ROOT/../shared/bench"
PAYLOAD=ping; DURATION=10s; PORT=8020
while [[ $# -gt 0 && $1 != "--" ]]; do
  case $1 in -p) PAYLOAD=$2; shift 2;; -d) DURATION=$2; shift 2;; *) echo "unknown option $1" >&2; exit 2;; esac
done
[[ ${1:-} == "--" ]] && shift
[[ $# -gt 0 ]] || { echo "usage: instructions.sh [-p PAYLOAD] [-d DURATION] -- COMMAND..." >&2; exit 2; }
[[ -f $KIT/payloads/$PAYLOAD.json ]] || { echo "no payload $KIT/payloads/$PAYLOAD.json" >&2; exit 2; }
missing=()
command -v valgrind >/dev/null || missing+=(valgrind)
command -v wrk >/dev/null || missing+=(wrk)
if [[ ${#missing[@]} -gt 0 ]]; then apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null; fi

OUT="$(mktemp -d /tmp/hookserver-instructions.XXXXXX)"
GITHUB_WEBHOOKS_KEY=bench-secret VALIDATE_IP=false HOOKSERVER_ADDR="127.0.0.1:$PORT" PORT="$PORT" \
  valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.%p" "$@" >"$OUT/server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true' EXIT
for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
callgrind_control -z "$PID" >/dev/null 2>&1

export PAYLOAD_FILE="$KIT/payloads/$PAYLOAD.json" GH_EVENT="$(cat "$KIT/payloads/$PAYLOAD.event")"
export DELIVERY=72d3162e-cc78-11e3-81ab-4c9367dc0958
export SIG256="sha256=$(openssl dgst -sha256 -hmac bench-secret -r "$PAYLOAD_FILE" | cut -d' ' -f1)"
export SIG1="sha1=$(openssl dgst -sha1 -hmac bench-secret -r "$PAYLOAD_FILE" | cut -d' ' -f1)"
report=$(timeout 300 wrk -t1 -c4 -d"$DURATION" -s "$KIT/webhook.lua" "http://127.0.0.1:$PORT/hooks")
callgrind_control -d "$PID" >/dev/null 2>&1
requests=$(awk '/requests in/ {print $1}' <<<"$report")
non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$report")
[[ -z $non2xx ]] || { echo "error: $non2xx answers were not 2xx; see $OUT/server.log" >&2; exit 1; }
# The dump holds everything from the zeroing to now.
instructions=$(awk '/^(summary|totals):/ {print $2; exit}' "$OUT"/callgrind.*.1)
echo "requests=$requests instructions=$instructions per_request=$((instructions / requests))"
