"""Error pages in a real browser (issue 15 item 6; R40): a page that does not exist says
so in words, and its link leads back home."""

from __future__ import annotations

import pytest

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]


def test_issue15_missing_page_shows_a_page_with_a_way_back(stack, browser_page, screenshot
                                                           ) -> None:
    from playwright.sync_api import expect

    page = browser_page
    answer = page.goto(f"{stack.bridge.base_url}/dashbord")
    assert answer is not None and answer.status == 404
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("/dashbord")
    screenshot(page, "page-not-found")
    page.get_by_role("link", name="Go to the home page").click()
    page.wait_for_url(f"{stack.bridge.base_url}/")
    expect(page.get_by_role("heading", level=1)).not_to_have_text("Page not found")


@pytest.mark.parametrize("sandbox", ["hubspot", "aircall"])
def test_issue15_sandbox_missing_page_is_a_page_for_a_browser(stack, browser_page,
                                                              sandbox: str) -> None:
    """The sandboxes' screens too: a mistyped address shows a page with a way back (their
    APIs keep answering JSON, as the real providers' APIs do)."""
    from playwright.sync_api import expect

    base = str(getattr(stack, sandbox).base_url)
    page = browser_page
    answer = page.goto(f"{base}/no-such-screen")
    assert answer is not None and answer.status == 404
    assert answer.headers["content-type"].startswith("text/html")
    expect(page.locator("main, body").first).to_contain_text("/no-such-screen")
    page.get_by_role("link", name="Back to the sandbox home").click()
    page.wait_for_url(f"{base}/")
    api = getattr(stack, sandbox).get("/no-such-screen", headers={"accept": "application/json"})
    assert api.status_code == 404 and api.headers["content-type"] == "application/json"
