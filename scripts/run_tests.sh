#!/usr/bin/env bash
# `make test`: lint, then the whole pytest suite (unit, slow, ros and browser tests) in the
# project's environment. Fails if pytest collects no test (its exit code 5).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/install_browser.sh
echo "[test] ruff check"
.venv/bin/ruff check .
echo "[test] pytest"
set +e
scripts/with_env.sh python -m pytest -p no:cacheprovider "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "[test] pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit "$rc"
