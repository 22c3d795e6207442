"""Benchmark: what Aircall's OAuth callback costs, by the size of the company (issue 17 item 7).

    .venv/bin/python bench/install_callback.py [--sizes 5 85 505] [--limits 60 1000000]

For each sandbox rate limit (calls per minute per company; 60 is Aircall's safe figure, a
million is "off") and each company size: the end-to-end stack of the tests (both sandboxes
and the web app on loopback, the demo installed), the demo company given numbers up to the
size (no webhooks), then an admin's browser re-authorises Aircall through the consent page
and our callback. Prints the callback's status and wall time, and the Aircall calls made
while it ran, with the 429s among them. (Before issue 17 item 7 the callback read every
number itself: one listing and two calls per number, at once.)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from harness.pages import signed_in  # noqa: E402
from harness.stack import running_stack  # noqa: E402

DEMO_COMPANY, DEMO_NUMBERS = 1, 5


def authorise_aircall(client: httpx.Client) -> httpx.Response:
    step = client.get("/oauth/aircall/install")
    consent = httpx.get(step.headers["location"] + f"&company_id={DEMO_COMPANY}",
                        follow_redirects=False)
    return client.get(consent.headers["location"])


def measure(limit: int, size: int) -> str:
    tmp = Path(tempfile.mkdtemp(prefix="bench-install-"))
    with running_stack(f"sqlite:///{tmp}/bench.sqlite3", tmp, private_sandboxes=True) as stack:
        if size > DEMO_NUMBERS:
            stack.aircall.post(f"/_sandbox/companies/{DEMO_COMPANY}/numbers",
                               json={"count": size - DEMO_NUMBERS, "notify": False})
        stack.aircall.post("/_sandbox/config", json={"rate_limit_per_minute": limit})

        def calls() -> list[dict[str, object]]:
            answer = stack.aircall.get(f"/_sandbox/companies/{DEMO_COMPANY}/api-calls")
            listed: list[dict[str, object]] = answer.json()["calls"]
            return listed

        earlier = len(calls())
        client, _ = signed_in(stack)
        client.timeout = httpx.Timeout(300)
        started = time.perf_counter()
        back = authorise_aircall(client)
        took = time.perf_counter() - started
        during = calls()[earlier:]
        limited = sum(1 for c in during if c["rate_limited"])
        return (f"limit {limit:>9,}/min  numbers {size:>5,}  status {back.status_code}  "
                f"callback {took:7.2f} s  Aircall calls {len(during):>6,}  429s {limited:,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5, 85, 505])
    parser.add_argument("--limits", type=int, nargs="+", default=[60, 1_000_000])
    args = parser.parse_args()
    for limit in args.limits:
        for size in args.sizes:
            print(measure(limit, size), flush=True)


if __name__ == "__main__":
    main()
