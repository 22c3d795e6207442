"""Check HTTP exchanges with HubSpot (or the sandbox) against HubSpot's own OpenAPI files.

    from openapi_hubspot import check_exchange
    response = client.post(...)
    check_exchange(response)          # uses response.request; raises SpecMismatch

The spec is picked by path prefix; the request's scheme/host are replaced by the specs'
server (`https://api.hubapi.com`) so any base URL works. Checked: request parameters and
body, response body (status code → declared response, else `default`). Not checked: the
security requirement (auth failures are what some tests send on purpose) and headers.

Known gaps of HubSpot's published files, handled here in one place:
- Create/list channels is `/conversations/custom-channels/v3` in the spec, but
  `/conversations/v3/custom-channels` in the guide and in all known code: aliased.
- `capabilities` is typed as a map of *objects* (a generator artefact of Java's
  `Map<String, Object>`), but its documented values are strings, lists and booleans
  (reference §1.3): its values are allowed to be anything.
- `PublicChannelIntegrationChannelPatch` types its string fields as `object`: patched to
  strings (capabilities stays an object).
- The shared `Error` response is declared as `*/*`, which openapi-core reads as raw bytes;
  HubSpot's error bodies are JSON, so it is read as `application/json`.
- 429 bodies have no `category` (captured real body, reference §7), so they are checked
  against HubSpot's rate-limit shape instead of `Error`.
- A 2xx the spec does not declare (e.g. 200 for an idempotent replay of a 201 create) is
  checked against the operation's one declared 2xx response.
Spec directory: $HUBSPOT_OPENAPI_DIR, else the first of `docs/reference/hubspot-openapi`
in the repository or `/work/shared/reference/hubspot-openapi` that exists.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from jsonschema_path import SchemaPath
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.validation.request.validators import (
    V30RequestBodyValidator,
    V30RequestParametersValidator,
)
from openapi_core.validation.response.validators import V30ResponseDataValidator
from werkzeug.datastructures import Headers, ImmutableMultiDict

SERVER = "https://api.hubapi.com"
REPO_ROOT = Path(__file__).resolve().parents[1]
SPEC_FILES = (
    # (path prefix, file); first match wins. The prefix names the version, so an exchange is
    # checked against the schema of the version it speaks (R50).
    ("/conversations/v3/custom-channels", "conversations-custom-channels-v3.json"),
    ("/conversations/custom-channels/v3", "conversations-custom-channels-v3.json"),
    ("/conversations/custom-channels/2026-03", "conversations-custom-channels-2026-03.json"),
    ("/conversations/v3/conversations", "conversations-v3.json"),
    ("/conversations/conversations/v3", "conversations-v3.json"),
    ("/crm/v3/objects/contacts", "crm-contacts-v3.json"),
    ("/crm/v3/objects/tickets", "crm-tickets-v3.json"),
    ("/crm/objects/2026-03/contacts", "crm-contacts-2026-03.json"),
    ("/crm/objects/2026-03/tickets", "crm-tickets-2026-03.json"),
    ("/files/v3/", "files-v3.json"),
    ("/files/2026-03/", "files-2026-03.json"),
    ("/oauth/v1", "oauth-v1.json"),
    ("/oauth/v3", "oauth-v3.json"),
    ("/oauth/2026-03", "oauth-2026-03.json"),
)
PATH_ALIASES = {
    "/conversations/v3/custom-channels": "/conversations/custom-channels/v3",
    "/conversations/v3/custom-channels/": "/conversations/custom-channels/v3",
}
RATE_LIMIT_FIELDS = {"status", "message", "errorType", "correlationId", "policyName"}


class SpecMismatch(AssertionError):
    """The exchange does not fit HubSpot's OpenAPI description."""


def spec_dir() -> Path:
    candidates = [
        os.environ.get("HUBSPOT_OPENAPI_DIR"),
        str(REPO_ROOT / "docs" / "reference" / "hubspot-openapi"),
        "/work/shared/reference/hubspot-openapi",
    ]
    for candidate in candidates:
        if candidate and (Path(candidate) / SPEC_FILES[0][1]).is_file():
            return Path(candidate)
    raise FileNotFoundError("HubSpot OpenAPI files not found; set HUBSPOT_OPENAPI_DIR")


@cache
def load_document(file_name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((spec_dir() / file_name).read_text())
    _repair(document)
    return document


@cache
def load_spec(file_name: str) -> SchemaPath:
    return OpenAPI.from_dict(load_document(file_name)).spec


def _repair(document: dict[str, Any]) -> None:
    for response in document.get("components", {}).get("responses", {}).values():
        content = response.get("content", {})
        if "*/*" in content:
            content["application/json"] = content.pop("*/*")
    schemas = document.get("components", {}).get("schemas", {})
    for schema in schemas.values():
        capabilities = schema.get("properties", {}).get("capabilities")
        if capabilities is not None and "additionalProperties" in capabilities:
            capabilities["additionalProperties"] = {}
    patch = schemas.get("PublicChannelIntegrationChannelPatch")
    if patch is not None:
        for name, schema in patch.get("properties", {}).items():
            if name != "capabilities" and schema.get("type") == "object":
                patch["properties"][name] = {"type": "string"}


def spec_file_for(path: str) -> str:
    for prefix, file_name in SPEC_FILES:
        if path.startswith(prefix):
            return file_name
    raise SpecMismatch(f"no HubSpot OpenAPI file describes {path}")


class _OpenAPIRequest:
    """An httpx.Request seen through openapi-core's Request protocol, on HubSpot's server."""

    def __init__(self, request: httpx.Request) -> None:
        url = urlsplit(str(request.url))
        self.path = PATH_ALIASES.get(url.path, url.path)
        self.host_url = SERVER
        self.method = request.method.lower()
        self.body: bytes | None = _content(request) or None
        self.content_type = request.headers.get("content-type", "application/json").lower()
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(
                [(k, v) for k, values in parse_qs(url.query).items() for v in values]
            ),
            header=Headers(dict(request.headers)),
            cookie=ImmutableMultiDict(),
        )


def _content(request: httpx.Request) -> bytes:
    """The body, also of a streamed one (a multipart upload, which httpx can read again)."""
    try:
        return request.content
    except httpx.RequestNotRead:
        return request.read()


class _OpenAPIResponse:
    def __init__(self, status_code: int, response: httpx.Response) -> None:
        self.status_code = status_code
        self.data: bytes | None = response.content or None
        self.headers = Headers(dict(response.headers))
        self.content_type = response.headers.get("content-type", "").lower()


def check_request(request: httpx.Request) -> None:
    """Raise SpecMismatch unless the request's parameters and body fit the spec."""
    spec = load_spec(spec_file_for(request.url.path))
    wrapped = _OpenAPIRequest(request)
    for validator in (V30RequestParametersValidator(spec), V30RequestBodyValidator(spec)):
        try:
            validator.validate(wrapped)
        except Exception as exc:  # openapi-core raises a family of errors; report any
            raise SpecMismatch(_describe("request", request, exc)) from exc


def check_response(response: httpx.Response, request: httpx.Request | None = None) -> None:
    """Raise SpecMismatch unless the response body fits the spec for its status code."""
    request = request or response.request
    if response.status_code == 429:
        _check_rate_limit_body(response)
        return
    file_name = spec_file_for(request.url.path)
    spec = load_spec(file_name)
    wrapped = _OpenAPIRequest(request)
    document = load_document(file_name)
    status = _declared_status(document, wrapped, response.status_code)
    if _declares_no_content(document, wrapped, status):
        if response.content:
            raise SpecMismatch(f"{request.method} {request.url.path}: {status} must have no body")
        return
    try:
        V30ResponseDataValidator(spec).validate(wrapped, _OpenAPIResponse(status, response))
    except Exception as exc:
        raise SpecMismatch(_describe("response", request, exc, response)) from exc


def check_exchange(response: httpx.Response) -> httpx.Response:
    """Check `response.request` and `response`; returns the response for chaining."""
    check_request(response.request)
    check_response(response)
    return response


def _declared_status(document: dict[str, Any], request: _OpenAPIRequest, status: int) -> int:
    """`status`, or the operation's only declared 2xx when a 2xx is not declared."""
    if not 200 <= status < 300:
        return status
    operation = _operation(document, request)
    if operation is None:
        return status
    declared = [code for code in operation.get("responses", {}) if code.isdigit()]
    if str(status) in declared:
        return status
    successes = [int(code) for code in declared if code.startswith("2")]
    return successes[0] if len(successes) == 1 else status


def _declares_no_content(document: dict[str, Any], request: _OpenAPIRequest, status: int) -> bool:
    operation = _operation(document, request)
    declared = (operation or {}).get("responses", {}).get(str(status))
    return declared is not None and not declared.get("content") and "$ref" not in declared


def _operation(document: dict[str, Any], request: _OpenAPIRequest) -> dict[str, Any] | None:
    paths: dict[str, Any] = document["paths"]
    for template, item in paths.items():
        if _matches(template, request.path) and request.method in item:
            operation: dict[str, Any] = item[request.method]
            return operation
    return None


def _matches(template: str, path: str) -> bool:
    left, right = template.strip("/").split("/"), path.strip("/").split("/")
    return len(left) == len(right) and all(
        t == p or (t.startswith("{") and t.endswith("}")) for t, p in zip(left, right, strict=True)
    )


def _check_rate_limit_body(response: httpx.Response) -> None:
    body = response.json()
    missing = RATE_LIMIT_FIELDS - set(body)
    if missing or body.get("errorType") != "RATE_LIMIT":
        raise SpecMismatch(f"429 body is not HubSpot's rate-limit shape: {body}")


def _describe(
    side: str, request: httpx.Request, exc: Exception, response: httpx.Response | None = None
) -> str:
    details = [f"{side} of {request.method} {request.url.path} does not fit HubSpot's spec"]
    details.append(f"{type(exc).__name__}: {exc}")
    for cause in _causes(exc):
        details.append(f"  - {cause}")
    if response is not None:
        details.append(f"status {response.status_code}, body {response.text[:800]}")
    elif request.content:
        details.append(f"body {request.content[:800]!r}")
    return "\n".join(details)


def _causes(exc: BaseException) -> list[str]:
    found: list[str] = []
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        nested = getattr(current, "schema_errors", None) or []
        found.extend(str(getattr(e, "message", e)) for e in nested)
        if current.__cause__ is not None:
            stack.append(current.__cause__)
    return found
