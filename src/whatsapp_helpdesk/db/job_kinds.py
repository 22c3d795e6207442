"""The outbox's job kinds: the `kind` strings stored in `outbox.kind`, named once.

Shared by the slice that enqueues a kind, the worker that runs it and the dashboard that
shows it, so none of them imports another slice for a name (issue 13 item 1). The strings
are data: existing rows carry them, so they never change.
"""

from __future__ import annotations

from typing import Final

PUBLISH_INBOUND: Final = "publish_inbound"  # inbound/publish.py
FETCH_MEDIA: Final = "fetch_media"  # inbound/media.py
SEND_REPLY: Final = "send_reply"  # replies/reply.py
REPORT_STATUS: Final = "report_status"  # replies/statuses.py
REENGAGEMENT_NOTE: Final = "reengagement_note"  # replies/reengagement.py
REFRESH_NUMBERS: Final = "refresh_numbers"  # connect/numbers_refresh.py
SYNC_NUMBER: Final = "sync_number"  # connect/numbers_refresh.py (a number.* webhook)
NATIVE_TICKET: Final = "native_ticket"  # native_tickets/tickets.py
SET_CONTACT_COMPANY: Final = "set_contact_company"  # native_tickets/contact_company.py

# What a native-ticket job is about (its payload's "kind"), and how the dashboard names it.
MISSED_CALL: Final = "missed_call"
VOICEMAIL: Final = "voicemail"
SMS: Final = "sms"
ACTIVITY_LABELS: Final = {MISSED_CALL: "Missed call", VOICEMAIL: "Voicemail", SMS: "SMS"}
