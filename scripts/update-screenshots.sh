#!/usr/bin/env bash
# Plays the sandbox story in Chromium (tests/browser/test_browser_full_story.py, and R52's
# "reply on Monday" in tests/browser/test_browser_reply_on_monday.py) and copies
# its screenshots to docs/screenshots/, where the README shows them.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/test.sh" -q "$root/tests/browser/test_browser_full_story.py" \
  "$root/tests/browser/test_browser_reply_on_monday.py"
mkdir -p "$root/docs/screenshots"
for shot in "$root"/test-artifacts/screenshots/test_the_whole_story__*.png \
    "$root"/test-artifacts/screenshots/test_R52_reply_on_monday_sqlite__*.png; do
  cp "$shot" "$root/docs/screenshots/${shot##*__}"
done
ls "$root/docs/screenshots"
