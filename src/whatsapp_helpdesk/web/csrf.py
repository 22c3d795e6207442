"""CSRF protection for the pages (R10): every POST form carries the session's CSRF token in
a hidden field (`csrf_token`), compared in constant time; the cookie is also SameSite=Lax.

Its own module so that the pages (which put the token in every form) and the sign-in routes
(which render pages) do not import each other.
"""

from __future__ import annotations

import secrets
from typing import Final

from fastapi import Request

SESSION_CSRF: Final = "csrf_token"
CSRF_FIELD: Final = "csrf_token"


def csrf_token(request: Request) -> str:
    token = request.session.get(SESSION_CSRF)
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        request.session[SESSION_CSRF] = token
    return token


def csrf_valid(request: Request, submitted: object) -> bool:
    expected = request.session.get(SESSION_CSRF)
    return (
        isinstance(expected, str)
        and isinstance(submitted, str)
        and bool(submitted)
        and secrets.compare_digest(expected.encode(), submitted.encode())
    )
