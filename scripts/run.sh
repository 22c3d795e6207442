#!/usr/bin/env bash
# Sets everything up and runs the service on its embedded default:
# SQLite file + sandbox HubSpot + sandbox Aircall + web app + worker, URLs printed.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/setup.sh"
cd "$root"
exec "$root/.venv/bin/whatsapp-helpdesk" serve "$@"
