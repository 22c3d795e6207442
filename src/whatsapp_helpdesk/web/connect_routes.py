"""The connection pop-up (R2-R5): GET/POST /connect."""

from __future__ import annotations

from fastapi import APIRouter

from whatsapp_helpdesk.bootstrap import Services


def router(services: Services) -> APIRouter:
    routes = APIRouter()
    return routes
