#!/usr/bin/env bash
# Load time, memory and look-ups per second of the embedded territory, as one JSON line.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet --release --locked -p secourir-territory --example territory_footprint
