#!/usr/bin/env bash
# A cluster node SIGKILLed under SIPp load, RUNS times (20 by default): three NATS servers and
# two Secourir nodes on loopback, SIPp callers on both nodes, three call-takers whose phones
# registered on the survivor. Each run checks that every call the dead node had on record is
# on the survivor, that every call it held is closed there and every unanswered one is on the
# call-back list, and measures the time from the death to the survivor's next answered call.
#
# Prints one line per run and a JSON summary:
#   {"kill_runs": 20, "records_lost": 0, "next_answer_ms_p50": …, "next_answer_ms_max": …}
# Environment: RUNS=20, RATE=1 (calls a second on each node).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-20}
RATE=${RATE:-1}
scripts/setup >&2
SECOURIR_KILL_RUNS=$RUNS SECOURIR_KILL_RATE=$RATE cargo test --locked -p secourir --test cluster \
    a_node_killed_under_load -- --nocapture 2>&1 | grep -E '^(kill run|\{|test result)'
