"""Server-rendered pages: the Jinja2 templates, their common context, and the static files.

Every page gets the session's CSRF token (for its forms), the signed-in installation's
banner (R8: on every page) and the one-shot message of the last action.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from whatsapp_helpdesk.dashboard.reads import InstallationSummary
from whatsapp_helpdesk.web.csrf import csrf_token

WEB_DIR: Final = Path(__file__).resolve().parent
TEMPLATES = Jinja2Templates(directory=str(WEB_DIR / "templates"))
STATIC_DIR: Final = WEB_DIR / "static"
# Served by name only: nothing else under the package is reachable from the web.
STATIC_FILES: Final = {"style.css": "text/css; charset=utf-8", "logo.svg": "image/svg+xml",
                       "live.js": "text/javascript; charset=utf-8",
                       "close_popup.js": "text/javascript; charset=utf-8"}
# static/live.js re-fetches the page to update its live sections: such a fetch must not
# consume the one-shot message meant for the page the user sees.
LIVE_REFRESH_HEADER: Final = "x-live-refresh"
SESSION_FLASH: Final = "flash"


def when(moment: datetime | None) -> str:
    """A moment as the pages show it: UTC, to the minute."""
    if moment is None:
        return "never"
    return moment.astimezone(UTC).strftime("%d %b %Y, %H:%M UTC")


def sentence(text: str) -> str:
    """First letter up, the rest as written (Jinja's `capitalize` lowers "HubSpot")."""
    return text[:1].upper() + text[1:]


TEMPLATES.env.filters["when"] = when
TEMPLATES.env.filters["sentence"] = sentence


def flash(request: Request, message: str, *, kind: str = "ok") -> None:
    """A message for the next page (post/redirect/get)."""
    request.session[SESSION_FLASH] = {"message": message, "kind": kind}


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    installation: InstallationSummary | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    shown = None if request.headers.get(LIVE_REFRESH_HEADER) else request.session.pop(
        SESSION_FLASH, None)
    page: dict[str, Any] = {
        "csrf_token": csrf_token(request),
        "installation": installation,
        "flash": shown if isinstance(shown, dict) else None,
        "now": datetime.now(UTC),
        **(context or {}),
    }
    return TEMPLATES.TemplateResponse(request, template, page, status_code=status_code)


def problem(
    request: Request,
    title: str,
    detail: str,
    *,
    status_code: int,
    action: tuple[str, str] | None = None,
    installation: InstallationSummary | None = None,
    popup: bool = False,
) -> HTMLResponse:
    """A page that says what went wrong and what to do, never a stack trace."""
    return render(
        request, "problem.html",
        {"title": title, "detail": detail, "action": action, "popup": popup},
        installation=installation, status_code=status_code,
    )


def add_static_routes(routes: APIRouter) -> None:
    @routes.get("/static/{name}", include_in_schema=False)
    async def static_file(name: str) -> Response:
        media_type = STATIC_FILES.get(name)
        if media_type is None:
            return Response("Not found", status_code=404, media_type="text/plain")
        return FileResponse(STATIC_DIR / name, media_type=media_type,
                            headers={"Cache-Control": "public, max-age=3600"})
