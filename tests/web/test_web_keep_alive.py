"""R44: no request goes unanswered under load (issue 17: ~1 in 1,400 got no response).

The web server closed a keep-alive connection after 5 idle seconds, uvicorn's default and
exactly the idle time after which common HTTP clients (httpx, hence our own sandbox
peers; many proxies) stop reusing one: a client sending its next request just as the
server closes the connection gets no answer at all. The server must keep an idle
connection longer than its clients do, so that the client is always the one closing it.
"""

from __future__ import annotations

import httpx
import uvicorn

from whatsapp_helpdesk.cli import web_server_options
from whatsapp_helpdesk.settings import Settings


def test_web_server_keeps_idle_connections_longer_than_clients_reuse_them_r44() -> None:
    client_expiry = httpx.Limits().keepalive_expiry or 0.0
    options = web_server_options(Settings(_env_file=None))
    config = uvicorn.Config(app=lambda *_: None, **options)
    # Longer than httpx's 5 s and than a load balancer's usual 60 s (AWS ALB's default):
    # a client's idle timer and ours never expire at the same moment.
    assert config.timeout_keep_alive > max(client_expiry, 60.0), (
        config.timeout_keep_alive, client_expiry)
