#!/usr/bin/env bash
# Callers who write, under load: SIPp callers each write one message to the 18 (SIP MESSAGE,
# RFC 3428) through an operator trunk, at rising rates. Each message opens a conversation that
# the platform answers 202, locates by its trunk's default, admits, routes, queues and welcomes
# with a message of its own; nobody answers, so each ends on the call-back list after the idle
# time. `rate` is the highest step whose callers all got their 202 and the welcome.
#
# "Lost" counts messages SIPp sent that have no conversation on record once the steps are over
# (read with `secourir calls --json` from the platform's store): it must be 0. CPU is the
# platform process's user+system time divided by the messages of the steps.
#
# Prints one JSON line at the end:
#   {"rate": …, "messages": …, "answered": …, "recorded": …, "lost": …, "cpu_ms_per_message": …, …}
#
# Environment: RATES="100 200 400 800", STEP_S=10.
set -euo pipefail
cd "$(dirname "$0")/.."

RATES=${RATES:-"100 200 400 800"}
STEP_S=${STEP_S:-10}

for tool in sipp curl python3; do
    command -v "$tool" >/dev/null || { echo "bench/message_load.sh: $tool is missing (scripts/setup installs it)" >&2; exit 1; }
done

OUT=$PWD/bench/out/message_load
rm -rf "$OUT"
mkdir -p "$OUT"
DATA=$OUT/data-dir
cargo build --release --locked -p secourir >&2
BIN=$PWD/target/release/secourir
BENCH=$PWD/bench

SIP_PORT=25360
HTTP_PORT=28380
CALLER_PORT=25380
TOKEN=bench-token

# The shipped configuration with room for every conversation of the run, and conversations that
# end after the shortest idle time allowed.
CONFIG="$OUT/bench.toml"
sed -e 's/^capacity = .*/capacity = 30000/' \
    -e 's/^queue_max = .*/queue_max = 30000/' \
    -e 's/^\[national\]$/[national]\ntext_idle_s = 10/' config/france.toml > "$CONFIG"
"$BIN" check-config "$CONFIG" >&2

cleanup() {
    kill "${PLATFORM_PID:-}" 2>/dev/null || true
    pkill -f "sipp.*$OUT" 2>/dev/null || true
}
trap cleanup EXIT

cpu_ms() { # user+system milliseconds of a pid
    read -r -a f < <(sed 's/^.*) //' "/proc/$1/stat")
    echo $(( (f[11] + f[12]) * 1000 / $(getconf CLK_TCK) ))
}

sipp_stat() { # a counter from the last line of a SIPp statistics file
    awk -F';' -v col="$2" 'NR==1 { for (i = 1; i <= NF; i++) if ($i == col) c = i } END { print $c + 0 }' "$1"
}

"$BIN" serve --config "$CONFIG" --sip "127.0.0.1:$SIP_PORT" --http "127.0.0.1:$HTTP_PORT" \
    --data-dir "$DATA" --api-token "$TOKEN" --media-ports 30000-39999 --no-tcp \
    > "$OUT/platform.out" 2> "$OUT/platform.log" &
PLATFORM_PID=$!
for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$HTTP_PORT/api/health" >/dev/null && break
    sleep 0.1
done

BEST=0; SENT=0; ANSWERED=0; FAILED=0; STEPS=""
cpu_before=$(cpu_ms "$PLATFORM_PID")
for rate in $RATES; do
    name="step-$rate"
    calls=$(( rate * STEP_S ))
    (cd "$OUT" && sipp -sf "$BENCH"/sipp/texter-load.xml -key trunk ";trunk=ingress-13" -key step "$rate" \
        -i 127.0.0.1 -p "$CALLER_PORT" -r "$rate" -rp 1000 -m "$calls" -l 100000 \
        -timeout $(( STEP_S + 60 ))s -recv_timeout 20000 -nostdin -trace_stat -fd 1 \
        -stf "$name.csv" "127.0.0.1:$SIP_PORT" > "$name.log" 2>&1) || true
    ok=$(sipp_stat "$OUT/$name.csv" 'SuccessfulCall(C)')
    failed=$(sipp_stat "$OUT/$name.csv" 'FailedCall(C)')
    created=$(sipp_stat "$OUT/$name.csv" 'TotalCallCreated')
    echo "rate $rate/s: $ok answered, $failed failed of $created" >&2
    SENT=$(( SENT + created )); ANSWERED=$(( ANSWERED + ok )); FAILED=$(( FAILED + failed ))
    STEPS="$STEPS{\"rate\":$rate,\"sent\":$created,\"answered\":$ok,\"failed\":$failed},"
    [ "$failed" -eq 0 ] && [ "$ok" -eq "$calls" ] && BEST=$rate
    # Let each step's callers end their calls before the next one starts.
    sleep 2
done
cpu_after=$(cpu_ms "$PLATFORM_PID")

# Every message sent must be a conversation on record: read the store until the count stops
# growing (the writer batches), for at most 30 s.
recorded=0
for _ in $(seq 1 60); do
    now=$("$BIN" calls --data-dir "$DATA" --json --since 1h --limit 1000000 2>/dev/null \
        | python3 -c 'import json,sys; print(sum(1 for c in json.load(sys.stdin) if c.get("medium") == "text"))')
    [ "$now" -ge "$SENT" ] && { recorded=$now; break; }
    [ "$now" -eq "$recorded" ] && [ "$now" -gt 0 ] && break
    recorded=$now
    sleep 0.5
done

python3 - "$BEST" "$SENT" "$ANSWERED" "$FAILED" "$recorded" "$cpu_before" "$cpu_after" "${STEPS%,}" <<'PY'
import json, sys
best, sent, answered, failed, recorded, before, after = map(int, sys.argv[1:8])
steps = json.loads("[" + sys.argv[8] + "]")
print(json.dumps({
    "rate": best, "messages": sent, "answered": answered, "failed": failed,
    "recorded": recorded, "lost": max(0, sent - recorded),
    "cpu_ms_per_message": round((after - before) / sent, 3) if sent else None,
    "steps": steps,
}))
PY
