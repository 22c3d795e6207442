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
