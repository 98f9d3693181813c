#!/usr/bin/env bash
# One year of national traffic through the real core: prints the run's first lines and its wall time.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --release --locked -p secourir
out="${TMPDIR:-/tmp}/secourir-year.json"
target/release/secourir sim scenarios/year.toml --json "$out" | head -3
python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(json.dumps({'simulated_calls': r['simulated_calls'], 'wall_seconds': r['wall_seconds']}))" "$out"
