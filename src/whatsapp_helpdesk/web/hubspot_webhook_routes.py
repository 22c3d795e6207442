"""POST /webhooks/hubspot: HubSpot's custom-channel webhooks (R21, R27, R42)."""

from __future__ import annotations

from fastapi import APIRouter

from whatsapp_helpdesk.bootstrap import Services


def router(services: Services) -> APIRouter:
    routes = APIRouter()
    return routes
