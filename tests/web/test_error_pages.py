"""Error answers by who asks (issue 15 item 6; R40): a browser (Accept: text/html) gets a
page that says what happened and links back home; an API client gets JSON; the webhook
endpoints answer exactly as before, whatever the Accept header."""

from __future__ import annotations

import pytest

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def test_issue15_missing_page_is_an_html_page_with_a_way_back_for_a_browser(stack) -> None:
    answer = stack.bridge.get("/no-such-page", headers={"accept": BROWSER_ACCEPT})

    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    assert "<h1 id=\"problem-title\">Page not found</h1>" in answer.text
    assert "/no-such-page" in answer.text
    assert 'href="/"' in answer.text


def test_issue15_missing_page_is_json_for_an_api_client(stack) -> None:
    for accept in ("application/json", "*/*"):
        answer = stack.bridge.get("/no-such-page", headers={"accept": accept})

        assert answer.status_code == 404
        assert answer.json() == {"detail": "Not Found"}


def test_issue15_wrong_method_on_a_page_is_html_for_a_browser(stack) -> None:
    answer = stack.bridge.delete("/dashboard", headers={"accept": BROWSER_ACCEPT})

    assert answer.status_code == 405
    assert answer.headers["content-type"].startswith("text/html")
    assert 'href="/"' in answer.text


@pytest.mark.parametrize("path", ["/webhooks/aircall", "/webhooks/hubspot"])
def test_issue15_webhook_endpoints_keep_their_json_even_for_a_browser(stack, path: str) -> None:
    wrong_method = stack.bridge.get(path, headers={"accept": BROWSER_ACCEPT})
    assert wrong_method.status_code == 405
    assert wrong_method.json() == {"detail": "Method Not Allowed"}

    unsigned = stack.bridge.post(path, content=b"{}", headers={"accept": BROWSER_ACCEPT})
    assert unsigned.headers["content-type"] == "application/json"
    assert unsigned.status_code in (400, 401)
    assert "result" in unsigned.json()
