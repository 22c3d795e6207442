"""R10 (issue 12, item 4): sessions are server-side. The cookie holds only a random id (the
database only its SHA-256), and sign-out, re-authorisation and an admin's "sign out
everywhere" revoke: a copied cookie opens nothing afterwards."""

from __future__ import annotations

import hashlib

import httpx
from harness.pages import admin, csrf_of, sign_in, signed_in
from harness.stack import PORTAL, Stack
from sqlalchemy import text

COOKIE = "wh_session"


def _copy_of(stack: Stack, client: httpx.Client) -> httpx.Client:
    """Another browser holding the same session cookie (stolen, or another tab)."""
    thief = admin(stack)
    thief.cookies.set(COOKIE, client.cookies[COOKIE])
    return thief


def _opens_dashboard(client: httpx.Client) -> bool:
    return client.get("/dashboard").status_code == 200


def test_R10_a_copied_cookie_opens_nothing_after_sign_out(stack: Stack) -> None:
    client, page = signed_in(stack)
    thief = _copy_of(stack, client)
    assert _opens_dashboard(thief)  # the copy works while the session lives
    assert client.post("/signout", data={"csrf_token": csrf_of(page)}).status_code == 303
    assert not _opens_dashboard(thief)
    assert not _opens_dashboard(client)


def test_R10_sign_out_everywhere_revokes_every_session_of_the_installation(
        stack: Stack) -> None:
    first, page = signed_in(stack)
    second, _ = signed_in(stack)
    thief = _copy_of(stack, second)
    assert _opens_dashboard(second) and _opens_dashboard(thief)
    answer = first.post("/dashboard/sessions/revoke", data={"csrf_token": csrf_of(page)})
    assert answer.status_code == 303
    for client in (first, second, thief):
        assert not _opens_dashboard(client)


def test_R10_sign_out_everywhere_needs_the_csrf_token(stack: Stack) -> None:
    first, _ = signed_in(stack)
    second, _ = signed_in(stack)
    answer = first.post("/dashboard/sessions/revoke", data={"csrf_token": "forged"})
    assert answer.status_code == 403
    assert _opens_dashboard(second)


def test_R10_re_authorisation_revokes_the_other_sessions(stack: Stack) -> None:
    other, _ = signed_in(stack)
    client, _ = signed_in(stack)
    step = client.get("/oauth/hubspot/install")
    consent = httpx.get(step.headers["location"] + f"&portal_id={PORTAL}",
                        follow_redirects=False)
    back = client.get(consent.headers["location"])
    assert back.status_code == 303 and back.headers["location"] == "/oauth/aircall/install"
    assert not _opens_dashboard(other)
    assert _opens_dashboard(client)  # the one who re-authorised stays signed in


def test_R10_the_cookie_is_a_random_id_stored_hashed_and_renewed_at_sign_in(
        stack: Stack) -> None:
    client = admin(stack)
    client.get("/signin")  # an anonymous session (the OAuth state) before signing in
    before = client.cookies.get(COOKIE)
    sign_in(client)
    cookie = client.cookies[COOKIE]
    assert cookie != before  # no session fixation
    assert "." not in cookie and len(cookie) >= 40  # not a signed payload: a random id
    with stack.services.engine.connect() as connection:
        stored = connection.execute(text("SELECT token_hash, data FROM admin_sessions")).all()
    assert hashlib.sha256(cookie.encode()).hexdigest() in {row[0] for row in stored}
    assert all(cookie not in (row[0] + row[1]) for row in stored)


def test_R10_R43_a_forged_or_malformed_cookie_is_no_session(stack: Stack) -> None:
    for value in ("forged", "x" * 500, '"unterminated', "a.b.c", "%00", "=;="):
        client = admin(stack)
        answer = client.get("/dashboard", headers={"cookie": f"{COOKIE}={value}"})
        assert answer.status_code == 303, (value, answer.text)
        assert answer.headers["location"].startswith("/signin")
