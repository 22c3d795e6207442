"""Sandbox Aircall: a faithful local emulator of Aircall's Public API and WhatsApp rules.

Public entry point: `create_app(public_base_url=...)`. Nothing here imports the service.
"""

from whatsapp_helpdesk.sandbox.aircall.app import create_app

__all__ = ["create_app"]
