#!/usr/bin/env bash
# The chaos suite (docs/reliability.md): the real service on a private PostgreSQL, several web
# and worker processes, both sandboxes, faults everywhere; then every message checked.
#   scripts/chaos.sh [--short|--full] [--set field=value ...] [--keep-logs]
# Exit status 1 when any message was lost, duplicated or misordered.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || ./scripts/setup.sh test
PYTHONPATH="tests${PYTHONPATH:+:$PYTHONPATH}" exec .venv/bin/python -m chaos.runner "$@"
