#!/usr/bin/env bash
# `make demo`: the RLHF demo. Runs `rlhf demo` (rlhf/pipeline.py) inside the project's environment.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if ! scripts/with_env.sh rlhf --help | grep -q "^    demo"; then
  echo "make demo: the end-to-end pipeline (rlhf demo) is not built yet; nothing was run." >&2
  echo "Available commands:" >&2
  scripts/with_env.sh rlhf --help >&2
  exit 2
fi
exec scripts/with_env.sh rlhf demo --out "${DEMO_OUT:-demo_out}" "$@"
