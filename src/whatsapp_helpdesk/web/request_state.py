"""The services a request's handler works with: those of the app that received the request.

The routes are built once per process (web/app.py, `shared_routes`) and shared by every app
the process builds: a test process builds hundreds, and FastAPI's analysis of ~34 routes was
most of each app's cost. Each app keeps its own services in its `state` (create_app), so a
handler reads them from `request.app` and never from a closure.
"""

from __future__ import annotations

from fastapi import Request

from whatsapp_helpdesk.bootstrap import Services


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services
