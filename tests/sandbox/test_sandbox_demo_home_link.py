"""Under `serve`, every screen of both sandboxes links back to the demo's home page (the
service's sandbox home); started alone, they do not."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from whatsapp_helpdesk.sandbox.aircall import create_app as aircall_app
from whatsapp_helpdesk.sandbox.hubspot import create_app as hubspot_app

HOME = "http://127.0.0.1:8700/"


async def _pages(app, paths: list[str]) -> list[str]:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox.test") as client:
        pages = [(await client.get(path)).text for path in paths]
    await app.state.sandbox.aclose()
    return pages


HUBSPOT_SCREENS = ["/", "/help-desk/4242/tickets", "/help-desk/4242/contacts",
                   "/help-desk/4242/settings/channels", "/help-desk/4242/tickets/404"]
AIRCALL_SCREENS = ["/", "/phone"]


@pytest.mark.parametrize(("make", "paths"), [(hubspot_app, HUBSPOT_SCREENS),
                                             (aircall_app, AIRCALL_SCREENS)])
def test_screens_link_back_to_the_demo_home_when_given(make, paths) -> None:  # type: ignore[no-untyped-def]
    linked = asyncio.run(_pages(make(public_base_url="http://sandbox.test",
                                     demo_home_url=HOME), paths))
    assert len(linked) == len(paths)  # else the next line would hold of nothing
    assert all(f'href="{HOME}"' in page and "Demo home" in page for page in linked)
    alone = asyncio.run(_pages(make(public_base_url="http://sandbox.test"), paths))
    assert not any("Demo home" in page for page in alone)
