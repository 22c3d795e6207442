"""HubSpot's two families of API paths, served by the same handlers (R50).

HubSpot versions its APIs by date since 2026-03: the custom channels, CRM objects and files
of v3 are also served at `/conversations/custom-channels/2026-03/...`,
`/crm/objects/2026-03/...` and `/files/2026-03/...`, with the same request and answer
schemas (the published 2026-03 and v3 files differ only in examples, and for files in which
fields an answer must carry; our answers carry them all). The routes are written once, at
their v3 path, and `with_dated_routes` mounts each again at its 2026-03 path. OAuth is
different in shape (introspection), so routes_oauth serves its versions itself.
"""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter
from fastapi.routing import APIRoute

DATED_VERSION: Final = "2026-03"

# v3 path prefix → its 2026-03 prefix. Create/list channels is spelled three ways in v3
# (the guide's, with and without a trailing slash, and the spec generator's); all three are
# served and map to the one 2026-03 path.
V3_TO_DATED: Final = (
    ("/conversations/v3/custom-channels", f"/conversations/custom-channels/{DATED_VERSION}"),
    ("/conversations/custom-channels/v3", f"/conversations/custom-channels/{DATED_VERSION}"),
    ("/crm/v3/objects/", f"/crm/objects/{DATED_VERSION}/"),
    ("/files/v3/", f"/files/{DATED_VERSION}/"),
)


def dated_path(path: str) -> str | None:
    """The 2026-03 path of a v3 route path, or None when the path has no dated twin."""
    for v3_prefix, dated_prefix in V3_TO_DATED:
        if path == v3_prefix or path.startswith(v3_prefix.rstrip("/") + "/"):
            return dated_prefix.rstrip("/") + path[len(v3_prefix.rstrip("/")):]
    return None


def with_dated_routes(router: APIRouter) -> APIRouter:
    """A router with `router`'s routes plus each v3 route again at its 2026-03 path."""
    both = APIRouter()
    both.routes.extend(router.routes)
    taken = {(r.path, frozenset(r.methods or ())) for r in router.routes
             if isinstance(r, APIRoute)}
    for route in [r for r in router.routes if isinstance(r, APIRoute)]:
        path = dated_path(route.path)
        methods = frozenset(route.methods or ())  # an APIRoute always has its methods
        if path is None or (path, methods) in taken:
            continue
        taken.add((path, methods))
        both.add_api_route(
            path,
            route.endpoint,
            methods=sorted(methods),
            status_code=route.status_code,
            response_model=route.response_model,
            response_class=route.response_class,
            dependencies=route.dependencies,
            include_in_schema=route.include_in_schema,
            name=f"{route.name}_{DATED_VERSION}",
        )
    return both
