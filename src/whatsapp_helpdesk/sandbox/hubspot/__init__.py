"""Sandbox HubSpot: a faithful local emulator of the HubSpot APIs the bridge uses.

Public entry point: `create_app(public_base_url=...)`. This package imports nothing from
the rest of `whatsapp_helpdesk`: it is an independent check of the bridge.
"""

from whatsapp_helpdesk.sandbox.hubspot.app import create_app

__all__ = ["create_app"]
