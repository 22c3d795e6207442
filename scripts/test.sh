#!/usr/bin/env bash
# Sets everything up and runs the whole test suite:
# virtualenv + test extras, Debian's chromium for the browser tests. PostgreSQL: the server on
# TEST_POSTGRES_URL (default 127.0.0.1:5432) when one answers, else the tests start a private
# cluster of their own from the pgserver package (tests/harness/private_postgres.py).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/setup.sh" test

if [ ! -x /usr/bin/chromium ]; then
  echo "installing Debian's chromium for the browser tests"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

cd "$root"
# Compiled modules kept between runs, in the virtualenv (never in the tree), whatever
# PYTHONDONTWRITEBYTECODE says (some shells and CI images set it): without them every test
# process, and every `python -m whatsapp_helpdesk` a test starts, compiled src/ again, and
# pytest rewrote the asserts of every test module again (its collection took 10.9 s of CPU
# instead of 5.1 s). Compiled once here first, so that the parallel processes do not each
# compile the same files.
unset PYTHONDONTWRITEBYTECODE
export PYTHONPYCACHEPREFIX="$root/.venv/pycache"
"$root/.venv/bin/python" -m compileall -q src tests >/dev/null
# Hypothesis's Unicode tables (.hypothesis/unicode_data: ~3 s of CPU to build), built once here
# in a fresh checkout rather than by each test process that draws text before another has
# written them (a test drawing 60 JSON values took 6.3 s of CPU without them, 1.7 s with).
if [ ! -d "${HYPOTHESIS_STORAGE_DIRECTORY:-$root/.hypothesis}/unicode_data" ]; then
  "$root/.venv/bin/python" -c \
    'from hypothesis import given, strategies as st; given(st.text(min_size=1))(lambda s: None)()'
fi
set +e
# Spread over twice as many processes as cores (pytest-xdist; work stealing, as e2e files
# differ in length; the tests marked `slow` start first, tests/harness/ordering.py): the suite
# spends most of its wall time waiting on servers, workers and clocks (on 2 processes it kept
# the two cores only two-thirds busy), so two processes per core overlap those waits.
# TEST_WORKERS=0 runs in one process; a `-n` among the arguments wins (it comes last).
"$root/.venv/bin/python" -m pytest -n "${TEST_WORKERS:-$(( $(nproc) * 2 ))}" --dist worksteal "$@"
status=$?
set -e
# pytest exits 5 when it collected no test: that is a failure of the suite, not a pass.
exit $status
