"""Error answers by who asks (issue 15 item 6): a browser gets a page in words with a way
back home; an API client gets FastAPI's usual JSON; the webhook endpoints always answer
their providers in JSON, exactly as before."""

from __future__ import annotations

from http import HTTPStatus
from typing import Final

from fastapi import FastAPI, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from whatsapp_helpdesk.web.pages import problem

# Provider traffic: its answers are part of the webhook contract, never pages.
MACHINE_PATHS: Final = ("/webhooks/",)
HOME: Final = ("/", "Go to the home page")

_WORDS: Final = {
    404: ("Page not found", "There is no page at {path}. Check the address, or start again "
          "from the home page."),
    405: ("This page can't do that", "{path} does not accept this kind of request. Start "
          "again from the home page."),
    422: ("This link is incomplete", "The address {path} is missing something the page "
          "needs. Start again from the home page, or from the link HubSpot gave you."),
}


def wants_html(request: Request) -> bool:
    """A browser asks for HTML by name; API clients send */* or application/json."""
    if request.url.path.startswith(MACHINE_PATHS):
        return False
    return "text/html" in request.headers.get("accept", "")


def _page(request: Request, status_code: int) -> Response:
    default = (HTTPStatus(status_code).phrase, "The request to {path} could not be answered. "
               "Start again from the home page.")
    title, detail = _WORDS.get(status_code, default)
    return problem(request, title, detail.format(path=request.url.path),
                   status_code=status_code, action=HOME)


def install_error_pages(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if wants_html(request):
            response = _page(request, exc.status_code)
            for name, value in (exc.headers or {}).items():
                response.headers[name] = value
            return response
        return await http_exception_handler(request, exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        if wants_html(request):
            return _page(request, 422)
        return await request_validation_exception_handler(request, exc)
