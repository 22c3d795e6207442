"""Server-side browser sessions (issue 12, item 4; R10).

Replaces Starlette's signed-cookie sessions: the cookie `wh_session` holds only a random id
(256 bits); the database keeps its SHA-256 and the session's data (the signed-in
installation, the CSRF token, OAuth states, the one-shot message) in `admin_sessions`.
Deleting a row ends that session for every copy of its cookie, which is what sign-out,
re-authorisation and "sign out everywhere" do.

`request.session` stays a plain dict for the routes. A route asks for a fresh id (at
sign-in: no session fixation) with `renew(request)`; an emptied session is deleted.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import UTC, datetime, timedelta
from http.cookies import CookieError, SimpleCookie
from typing import Any, Final

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from whatsapp_helpdesk.db.models import AdminSession

COOKIE: Final = "wh_session"
SIGNED_IN_LIFETIME: Final = timedelta(days=14)
# A visitor who never signs in (an OAuth state, a flash message): kept briefly.
ANONYMOUS_LIFETIME: Final = timedelta(hours=1)
_RENEW: Final = "_renew"
_INSTALLATION: Final = "installation_id"  # the key web/auth.py signs in with


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _now() -> datetime:
    # Wall-clock time, not the sandbox's movable clock: a session lasts real days.
    return datetime.now(UTC)


def renew(request: Request) -> None:
    """Give this session a new id when it is saved (the old one stops working)."""
    request.session[_RENEW] = True


def revoke_installation(sessions: sessionmaker[Session], installation_id: int) -> int:
    """End every session signed in to an installation; how many there were."""
    with sessions.begin() as session:
        result = session.execute(
            delete(AdminSession).where(AdminSession.installation_id == installation_id))
        return int(getattr(result, "rowcount", 0) or 0)


class ServerSessions:
    def __init__(self, app: ASGIApp, sessions: sessionmaker[Session], *, https_only: bool):
        self.app = app
        self.sessions = sessions
        self.secure = "; Secure" if https_only else ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        session_id = self._cookie(scope)
        loaded = await run_in_threadpool(self._load, session_id) if session_id else None
        data: dict[str, Any] = loaded if loaded is not None else {}
        before = json.dumps(data, sort_keys=True)
        scope["session"] = data

        async def save_then_send(message: Message) -> None:
            # No session came in and none was started (every webhook): nothing to save, so
            # no thread hop per request (issue 17 item 1).
            if message["type"] == "http.response.start" and (session_id or data):
                header = await run_in_threadpool(
                    self._save, session_id if loaded is not None else None, data, before)
                if header is not None:
                    message.setdefault("headers", [])
                    message["headers"] = [*message["headers"],
                                          (b"set-cookie", header.encode("latin-1"))]
            await send(message)

        await self.app(scope, receive, save_then_send)

    @staticmethod
    def _cookie(scope: Scope) -> str | None:
        for name, value in scope.get("headers", []):
            if name == b"cookie":
                cookie: SimpleCookie = SimpleCookie()
                try:
                    cookie.load(value.decode("latin-1"))
                except CookieError:  # a malformed Cookie header is no session, not an error
                    return None
                morsel = cookie.get(COOKIE)
                if morsel is not None and 0 < len(morsel.value) <= 128:
                    return morsel.value
        return None

    def _load(self, session_id: str) -> dict[str, Any] | None:
        with self.sessions() as session:
            row = session.scalar(select(AdminSession).where(
                AdminSession.token_hash == _digest(session_id)))
            if row is None or row.expires_at <= _now():
                return None
            try:
                data = json.loads(row.data)
            except ValueError:
                return None
            return data if isinstance(data, dict) else None

    def _save(self, session_id: str | None, data: dict[str, Any], before: str) -> str | None:
        """Write the session if it changed; the Set-Cookie header to send, if any."""
        renewing = bool(data.pop(_RENEW, False))
        after = json.dumps(data, sort_keys=True)
        if after == before and not renewing:
            return None
        now = _now()
        with self.sessions.begin() as session:
            # Expired sessions go when any session is written (an index on expires_at).
            session.execute(delete(AdminSession).where(AdminSession.expires_at <= now))
            if session_id is not None and (renewing or not data):
                session.execute(delete(AdminSession).where(
                    AdminSession.token_hash == _digest(session_id)))
            if not data:
                return self._clear()
            installation = data.get(_INSTALLATION)
            lifetime = SIGNED_IN_LIFETIME if installation else ANONYMOUS_LIFETIME
            installation_id = installation if isinstance(installation, int) else None
            if session_id is not None and not renewing:
                updated = session.execute(
                    update(AdminSession)
                    .where(AdminSession.token_hash == _digest(session_id))
                    .values(data=after, installation_id=installation_id,
                            expires_at=now + lifetime))
                if getattr(updated, "rowcount", 0):
                    return None
                if installation_id is not None:
                    # Revoked while this request ran (sign-out elsewhere): it stays ended.
                    return self._clear()
                # Gone (the demo's reset empties every table) but carrying no sign-in: it
                # may start again under a new id (the reset's message is in it).
            new_id = secrets.token_urlsafe(32)
            session.add(AdminSession(
                token_hash=_digest(new_id), installation_id=installation_id, data=after,
                created_at=now, expires_at=now + lifetime))
        return (f"{COOKIE}={new_id}; Path=/; Max-Age={int(lifetime.total_seconds())}; "
                f"HttpOnly; SameSite=Lax{self.secure}")

    def _clear(self) -> str:
        return f"{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{self.secure}"
