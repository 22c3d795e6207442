"""The sandboxes' API docs (Swagger UI) work offline (issue 15 item 7; R40): every asset
comes from our own server, served from a Python package, never from a CDN."""

from __future__ import annotations

import re
from urllib.parse import urlparse

import pytest

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]

EXTERNAL_URL = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//(?!127\.0\.0\.1)""")


@pytest.mark.parametrize("sandbox", ["hubspot", "aircall"])
def test_issue15_sandbox_api_docs_render_with_no_request_leaving_the_machine(
    stack, browser_page, screenshot, sandbox: str
) -> None:
    from playwright.sync_api import expect

    base = str(getattr(stack, sandbox).base_url)
    page = browser_page
    elsewhere: list[str] = []

    def offline(route) -> None:  # the machine has no Internet: neither does this browser
        if urlparse(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", offline)
    page.goto(f"{base}/_sandbox/docs")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    screenshot(page, f"{sandbox}-api-docs")
    assert elsewhere == []


@pytest.mark.parametrize("sandbox", ["hubspot", "aircall"])
def test_issue15_sandbox_api_docs_page_names_no_other_host(stack, sandbox: str) -> None:
    client = getattr(stack, sandbox)
    html = client.get("/_sandbox/docs").text

    assert "swagger-ui" in html
    assert EXTERNAL_URL.search(html) is None, html
    for asset in re.findall(r"""(?:src|href)="(/[^"]+)""", html):
        assert client.get(asset).status_code == 200, asset
