#!/usr/bin/env bash
# One Secourir platform (embedded mode, SQLite) SIGKILLed under SIPp load, RUNS times (20 by
# default): three call-takers answering, callers at RATE calls a second. Each run restarts the
# platform on the same data directory and checks that every caller SIPp saw answered has a
# record, that no number is given twice, that every recording plays and matches its record's
# SHA-256, and that every call the restart closed as interrupted is on the call-back list.
#
# Prints one line per run and a JSON summary:
#   {"crash_runs": 20, "rate": 20, "answered": …, "answered_without_record": 0, …}
# Environment: RUNS=20, RATE=20.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-20}
RATE=${RATE:-20}
scripts/setup >&2
SECOURIR_CRASH_RUNS=$RUNS SECOURIR_CRASH_RATE=$RATE cargo test --locked -p secourir --test restart \
    a_platform_killed_under_load -- --nocapture 2>&1 | grep -E '^(crash run|\{|test result)'
