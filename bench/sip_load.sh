#!/usr/bin/env bash
# SIP load of the platform's full call flow, against Kamailio as a plain stateful proxy between
# the same SIPp endpoints, in the same run, on loopback.
#
# Full flow, per call: the caller's INVITE to 18 (SDP + PIDF-LO) is located, admitted and
# answered by the platform (media anchored, announcement), a registered call-taker's phone is
# rung, answers, both legs are bridged and recorded; the caller hangs up after HOLD_MS, the
# platform hangs up the call-taker. Rates rise step by step; `cps` is the highest rate whose step
# ended with no failed call. CPU is user+system time of the platform's process (of all Kamailio
# processes for the peer) divided by the calls completed in the steps.
# Then a simultaneous phase: calls held SIM_HOLD_S with 7 s of G.711 from each caller, bridged
# and recorded, to measure the most simultaneous calls and the platform's memory.
#
# Prints one JSON line at the end:
#   {"cps": …, "failed": …, "cpu_ms_per_call": …, "peer_cpu_ms_per_call": …, "max_simultaneous": …, …}
#
# Then the same rate steps against the platform in cluster mode (`serve --cluster`, one node
# on a log replicated on three NATS JetStream servers on loopback): cluster_cps,
# cluster_cpu_ms_per_call (the node's process) and nats_cpu_ms_per_call (the three servers).
#
# Last, a queued phase on a second platform started with --signalling-only (no media anchored):
# QUEUED calls arrive at 500 per second and wait in queue with nobody to answer, to measure the
# most simultaneous calls the signalling plane holds and its memory.
#
# Environment: RATES="100 200 300 400 500", STEP_S=10, HOLD_MS=1000, CALL_TAKERS=2500,
#              SIM_RATE=100, SIM_HOLD_S=25 (SIM_RATE=0 skips the simultaneous phase),
#              QUEUED=20000 (0 skips the queued phase), CLUSTER=1 (0 skips the cluster phase),
#              BENCH_DATA=$OUT/data-dir.
set -euo pipefail
cd "$(dirname "$0")/.."

RATES=${RATES:-"100 200 300 400 500"}
STEP_S=${STEP_S:-10}
HOLD_MS=${HOLD_MS:-1000}
CALL_TAKERS=${CALL_TAKERS:-2500}
SIM_RATE=${SIM_RATE:-100}
SIM_HOLD_S=${SIM_HOLD_S:-25}
QUEUED=${QUEUED:-20000}
CLUSTER=${CLUSTER:-1}

for tool in sipp kamailio curl md5sum python3; do
    command -v "$tool" >/dev/null || { echo "bench/sip_load.sh: $tool is missing (scripts/setup installs it)" >&2; exit 1; }
done

OUT=$PWD/bench/out/sip_load
rm -rf "$OUT"
mkdir -p "$OUT"
# The store and the recordings go to disk, as in service, and are deleted at the end (tens of
# thousands of WAV files). BENCH_DATA=/dev/shm/x puts them in memory to see the platform's own
# share of the CPU apart from the file system's.
DATA=${BENCH_DATA:-$OUT/data-dir}
rm -rf "$DATA"
mkdir -p "$DATA"
cargo build --release --locked -p secourir >&2
BIN=$PWD/target/release/secourir
BENCH=$PWD/bench

SIP_PORT=25060
HTTP_PORT=28080
PHONE_PORT=25071
KAM_PORT=25160
UAS_PORT=25171
NATS_PORT=25222
CALLER_PORT=25080
TOKEN=bench-token

# The shipped configuration, with no wrap-up pause, room for every simultaneous call, and
# CALL_TAKERS call-takers of CTA 13 whose phones all ring the same SIPp answerer.
CONFIG="$OUT/bench.toml"
sed -e 's/^wrap_up_s = .*/wrap_up_s = 0           # bench: next call at once/' \
    -e 's/^capacity = .*/capacity = 30000/' \
    -e 's/^queue_max = .*/queue_max = 30000/' config/france.toml > "$CONFIG"
for i in $(seq 1 "$CALL_TAKERS"); do
    login="bench-$i"
    ha1=$(printf '%s' "$login:secourir:bench" | md5sum | cut -d' ' -f1)
    printf '\n[[call_taker]]\nlogin = "%s"\ncta = "cta-13"\nsip_ha1 = "%s"\n' "$login" "$ha1" >> "$CONFIG"
done
"$BIN" check-config "$CONFIG" >&2

cleanup() {
    kill "${PLATFORM_PID:-}" "${PHONES_PID:-}" ${NATS_PIDS:-} 2>/dev/null || true
    rm -rf "$DATA"
    pkill -f "$OUT/kamailio.cfg" 2>/dev/null || true
    pkill -f "sipp.*$OUT" 2>/dev/null || true
}
trap cleanup EXIT

cpu_ms() { # user+system milliseconds of the given pids
    local total=0 pid
    for pid in "$@"; do
        if [ -r "/proc/$pid/stat" ]; then
            read -r -a f < <(sed 's/^.*) //' "/proc/$pid/stat")
            total=$(( total + (f[11] + f[12]) * 1000 / $(getconf CLK_TCK) ))
        fi
    done
    echo "$total"
}

# sipp_calls FILE COLUMN: a counter from the last line of a SIPp statistics file.
sipp_stat() {
    awk -F';' -v col="$2" 'NR==1 { for (i = 1; i <= NF; i++) if ($i == col) c = i } END { print $c + 0 }' "$1"
}

# run_step TARGET_PORT RATE NAME: RATE calls per second for STEP_S seconds; prints "ok failed".
run_step() {
    local port=$1 rate=$2 name=$3 calls=$(( $2 * STEP_S ))
    (cd "$OUT" && sipp -sf "$BENCH"/sipp/caller-load.xml -key trunk ";trunk=ingress-13" -i 127.0.0.1 -p "$CALLER_PORT" \
        -mi 127.0.0.1 -mp 26000 -r "$rate" -rp 1000 -m "$calls" -d "$HOLD_MS" \
        -l 100000 -timeout $(( STEP_S + 60 ))s -recv_timeout 20000 -nostdin -trace_stat -fd 1 \
        -stf "$name.csv" "127.0.0.1:$port" > "$name.log" 2>&1) || true
    echo "$(sipp_stat "$OUT/$name.csv" 'SuccessfulCall(C)') $(sipp_stat "$OUT/$name.csv" 'FailedCall(C)')"
}

# platform_phase NAME DATA_DIR [ARGS…]: starts `secourir serve` with ARGS, registers the
# call-takers' phones, runs the rate steps; sets BEST OK_TOTAL FAILED_TOTAL CPU_PER_CALL and
# leaves the platform (PLATFORM_PID) and its phones (PHONES_PID) running.
platform_phase() {
    local name=$1 data=$2 rate ok failed cpu_before cpu_after
    shift 2
    "$BIN" serve --config "$CONFIG" --sip "127.0.0.1:$SIP_PORT" --http "127.0.0.1:$HTTP_PORT" \
        --data-dir "$data" --api-token "$TOKEN" --media-ports 30000-59999 --no-tcp "$@" \
        > "$OUT/$name.out" 2> "$OUT/$name.log" &
    PLATFORM_PID=$!
    for _ in $(seq 1 600); do
        curl -sf "http://127.0.0.1:$HTTP_PORT/api/health" >/dev/null && break
        sleep 0.1
    done
    python3 bench/register_call_takers.py "$SIP_PORT" "$PHONE_PORT" bench \
        $(seq -f 'bench-%g' 1 "$CALL_TAKERS") >&2
    seq 1 "$CALL_TAKERS" | xargs -P 4 -I{} curl -sf -o /dev/null -X POST \
        -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
        -d '{"state":"available"}' "http://127.0.0.1:$HTTP_PORT/api/call-takers/bench-{}/state"
    (cd "$OUT" && exec sipp -sf "$BENCH"/sipp/answer.xml -i 127.0.0.1 -p "$PHONE_PORT" -mi 127.0.0.1 \
        -mp 27000 -rsa "127.0.0.1:$SIP_PORT" -l 100000 -nostdin "127.0.0.1:$SIP_PORT" \
        > "$name-phones.log" 2>&1) &
    PHONES_PID=$!
    sleep 1
    BEST=0; FAILED_TOTAL=0; OK_TOTAL=0
    cpu_before=$(cpu_ms "$PLATFORM_PID")
    for rate in $RATES; do
        read -r ok failed < <(run_step "$SIP_PORT" "$rate" "$name-$rate")
        echo "$name: $rate cps for ${STEP_S}s: $ok completed, $failed failed" >&2
        OK_TOTAL=$(( OK_TOTAL + ok )); FAILED_TOTAL=$(( FAILED_TOTAL + failed ))
        [ "$failed" -eq 0 ] && [ "$ok" -gt 0 ] && BEST=$rate
        sleep 2
    done
    cpu_after=$(cpu_ms "$PLATFORM_PID")
    CPU_PER_CALL=$(awk -v c=$(( cpu_after - cpu_before )) -v n="$OK_TOTAL" 'BEGIN { printf "%.3f", n ? c / n : 0 }')
}

# --- The platform, embedded (one process, its SQLite store) ----------------------------------
platform_phase platform "$DATA/data"
best=$BEST; ok_total=$OK_TOTAL; failed_total=$FAILED_TOTAL; platform_cpu_per_call=$CPU_PER_CALL

max_sim=0; sim_failed=0; rss_mb=0
if [ "$SIM_RATE" -gt 0 ]; then
    sim_calls=$(( SIM_RATE * (SIM_HOLD_S + 5) ))
    (cd "$OUT" && sipp -sf "$BENCH"/sipp/caller-load-media.xml -i 127.0.0.1 -p "$CALLER_PORT" \
        -mi 127.0.0.1 -mp 26000 -r "$SIM_RATE" -m "$sim_calls" -d $(( SIM_HOLD_S * 1000 )) \
        -l 100000 -timeout $(( SIM_HOLD_S + 120 ))s -nostdin -trace_stat -fd 1 \
        -stf sim.csv "127.0.0.1:$SIP_PORT" > sim.log 2>&1) &
    SIM_PID=$!
    while kill -0 "$SIM_PID" 2>/dev/null; do
        live=$(curl -sf "http://127.0.0.1:$HTTP_PORT/api/health" | sed -n 's/.*"live_calls":\([0-9]*\).*/\1/p')
        [ -n "$live" ] && [ "$live" -gt "$max_sim" ] && max_sim=$live
        sleep 0.5
    done
    sim_failed=$(sipp_stat "$OUT/sim.csv" 'FailedCall(C)')
    rss_mb=$(awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$PLATFORM_PID/status")
    echo "platform: $max_sim simultaneous calls bridged and recorded, $sim_failed failed, peak RSS ${rss_mb} MB" >&2
fi
recordings=$(find "$DATA/data/recordings" -name '*.wav' | wc -l)
kill "$PHONES_PID" "$PLATFORM_PID" 2>/dev/null || true
wait "$PLATFORM_PID" 2>/dev/null || true
sleep 1

# --- The platform in cluster mode: one node on a log replicated on three NATS servers -------
cluster_best=0; cluster_failed=0; cluster_cpu_per_call=0; nats_cpu_per_call=0
if [ "$CLUSTER" = 1 ]; then
    NATS=$PWD/target/tools/nats-server-2.15.1/bin/nats-server
    [ -x "$NATS" ] || { echo "bench/sip_load.sh: $NATS is missing (scripts/setup installs it)" >&2; exit 1; }
    routes=""; urls=""
    for i in 0 1 2; do
        routes="$routes${routes:+,}nats://127.0.0.1:$(( NATS_PORT + 10 + i ))"
        urls="$urls${urls:+,}nats://127.0.0.1:$(( NATS_PORT + i ))"
    done
    NATS_PIDS=""
    for i in 0 1 2; do
        "$NATS" -a 127.0.0.1 -p $(( NATS_PORT + i )) -n "n$i" --cluster_name bench \
            --cluster "nats://127.0.0.1:$(( NATS_PORT + 10 + i ))" --routes "$routes" -js \
            -sd "$DATA/nats-$i" > "$OUT/nats-$i.log" 2>&1 &
        NATS_PIDS="$NATS_PIDS $!"
    done
    nats_before=$(cpu_ms $NATS_PIDS)
    platform_phase cluster "$DATA/cluster-data" --cluster "$urls" --node bench-a --site bench
    cluster_best=$BEST; cluster_failed=$FAILED_TOTAL; cluster_cpu_per_call=$CPU_PER_CALL
    nats_after=$(cpu_ms $NATS_PIDS)
    nats_cpu_per_call=$(awk -v c=$(( nats_after - nats_before )) -v n="$OK_TOTAL" 'BEGIN { printf "%.3f", n ? c / n : 0 }')
    kill "$PHONES_PID" "$PLATFORM_PID" $NATS_PIDS 2>/dev/null || true
    wait "$PLATFORM_PID" 2>/dev/null || true
    sleep 1
fi

# --- The peer: Kamailio as a stateful proxy between the same SIPp endpoints ------------------
sed -e "s/LISTEN/127.0.0.1:$KAM_PORT/" -e "s/UAS_PORT/$UAS_PORT/" bench/kamailio.cfg > "$OUT/kamailio.cfg"
kamailio -f "$OUT/kamailio.cfg" -P "$OUT/kamailio.pid" -w "$OUT" -E > "$OUT/kamailio.log" 2>&1
sleep 1
(cd "$OUT" && exec sipp -sf "$BENCH"/sipp/answer.xml -i 127.0.0.1 -p "$UAS_PORT" -mi 127.0.0.1 \
    -mp 27500 -l 100000 -nostdin "127.0.0.1:$KAM_PORT" > uas.log 2>&1) &
PHONES_PID=$!
sleep 1
kam_pids=$(pgrep -f "$OUT/kamailio.cfg" | tr '\n' ' ')
peer_ok_total=0; peer_failed_total=0; peer_best=0
peer_before=$(cpu_ms $kam_pids)
for rate in $RATES; do
    read -r ok failed < <(run_step "$KAM_PORT" "$rate" "kamailio-$rate")
    echo "kamailio: $rate cps for ${STEP_S}s: $ok completed, $failed failed" >&2
    peer_ok_total=$(( peer_ok_total + ok )); peer_failed_total=$(( peer_failed_total + failed ))
    [ "$failed" -eq 0 ] && [ "$ok" -gt 0 ] && peer_best=$rate
    sleep 2
done
peer_after=$(cpu_ms $kam_pids)
peer_cpu_per_call=$(awk -v c=$(( peer_after - peer_before )) -v n="$peer_ok_total" 'BEGIN { printf "%.3f", n ? c / n : 0 }')

# --- Signalling only: calls queued with nobody to answer ---------------------------------------
max_queued=0; queued_failed=0; queued_rss_mb=0
if [ "$QUEUED" -gt 0 ]; then
    sed -e 's/^reserved_share = .*/reserved_share = 0.0/' "$CONFIG" > "$OUT/queued.toml"
    "$BIN" serve --config "$OUT/queued.toml" --sip "127.0.0.1:$SIP_PORT" --http "127.0.0.1:$HTTP_PORT" \
        --data-dir "$DATA/queued-data" --api-token "$TOKEN" --no-tcp --signalling-only \
        > "$OUT/queued.out" 2> "$OUT/queued.log" &
    PLATFORM_PID=$!
    for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$HTTP_PORT/api/health" >/dev/null && break
        sleep 0.1
    done
    hold_s=$(( QUEUED / 500 + 20 ))
    (cd "$OUT" && exec sipp -sf "$BENCH"/sipp/caller-load.xml -key trunk ";trunk=ingress-13" -i 127.0.0.1 -p "$CALLER_PORT" \
        -mi 127.0.0.1 -mp 26000 -r 500 -m "$QUEUED" -d $(( hold_s * 1000 )) \
        -l $(( QUEUED + 1000 )) -timeout $(( hold_s + 120 ))s -nostdin -trace_stat -fd 1 \
        -stf queued.csv "127.0.0.1:$SIP_PORT" > queued-sipp.log 2>&1) &
    QUEUED_PID=$!
    while kill -0 "$QUEUED_PID" 2>/dev/null; do
        live=$(curl -sf "http://127.0.0.1:$HTTP_PORT/api/health" | sed -n 's/.*"live_calls":\([0-9]*\).*/\1/p')
        [ -n "$live" ] && [ "$live" -gt "$max_queued" ] && max_queued=$live
        sleep 0.5
    done
    queued_failed=$(sipp_stat "$OUT/queued.csv" 'FailedCall(C)')
    queued_rss_mb=$(awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$PLATFORM_PID/status")
    echo "signalling only: $max_queued calls queued at once, $queued_failed failed, peak RSS ${queued_rss_mb} MB" >&2
    kill "$PLATFORM_PID" 2>/dev/null || true
fi

printf '{"cps": %s, "failed": %s, "cpu_ms_per_call": %s, "cluster_cps": %s, "cluster_failed": %s, "cluster_cpu_ms_per_call": %s, "nats_cpu_ms_per_call": %s, "peer_cpu_ms_per_call": %s, "max_simultaneous": %s, "simultaneous_failed": %s, "peak_rss_mb": %s, "recordings": %s, "peer_cps": %s, "peer_failed": %s, "max_queued_signalling_only": %s, "queued_failed": %s, "queued_peak_rss_mb": %s}\n' \
    "$best" "$failed_total" "$platform_cpu_per_call" "$cluster_best" "$cluster_failed" "$cluster_cpu_per_call" "$nats_cpu_per_call" "$peer_cpu_per_call" "$max_sim" "$sim_failed" "$rss_mb" "$recordings" "$peer_best" "$peer_failed_total" "$max_queued" "$queued_failed" "$queued_rss_mb"
