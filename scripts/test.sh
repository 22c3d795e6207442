#!/usr/bin/env bash
# Sets everything up and runs the whole test suite:
# virtualenv + test extras, Debian's chromium for the browser tests, PostgreSQL started if down.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/setup.sh" test

if [ ! -x /usr/bin/chromium ]; then
  echo "installing Debian's chromium for the browser tests"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi

cd "$root"
set +e
# Spread over the machine's cores (pytest-xdist; work stealing, as e2e files differ in
# length). TEST_WORKERS=0 runs in one process; a `-n` among the arguments wins (it comes last).
"$root/.venv/bin/python" -m pytest -n "${TEST_WORKERS:-2}" --dist worksteal "$@"
status=$?
set -e
# pytest exits 5 when it collected no test: that is a failure of the suite, not a pass.
exit $status
