"""The integration dashboard (R7-R10)."""

from __future__ import annotations

from fastapi import APIRouter

from whatsapp_helpdesk.bootstrap import Services


def router(services: Services) -> APIRouter:
    routes = APIRouter()
    return routes
