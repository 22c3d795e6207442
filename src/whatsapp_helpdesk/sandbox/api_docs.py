"""A sandbox's API docs page (Swagger UI), its assets served from the `swagger-ui-bundle-v2`
package: FastAPI's default page loads them from a CDN, so it was blank offline (issue 15).
Shared by both emulators (the sandbox package's own kit; the bridge never imports it)."""

from __future__ import annotations

from typing import Final

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from swagger_ui_bundle import swagger_ui_path

# Served by name only: nothing else of the package is reachable from the web.
ASSETS: Final = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}


def serve_api_docs(app: FastAPI, *, docs_url: str, openapi_url: str, title: str) -> None:
    """Swagger UI at `docs_url`, for the schema at `openapi_url`, with local assets."""
    assets_url = f"{docs_url}/assets"

    @app.get(docs_url, include_in_schema=False)
    async def api_docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=title,
            swagger_js_url=f"{assets_url}/swagger-ui-bundle.js",
            swagger_css_url=f"{assets_url}/swagger-ui.css",
            swagger_favicon_url=f"{assets_url}/favicon-32x32.png",
        )

    @app.get(f"{assets_url}/{{name}}", include_in_schema=False)
    async def api_docs_asset(name: str) -> Response:
        media_type = ASSETS.get(name)
        if media_type is None:
            return Response("Not found", status_code=404, media_type="text/plain")
        return Response((swagger_ui_path / name).read_bytes(), media_type=media_type,
                        headers={"Cache-Control": "public, max-age=86400"})
