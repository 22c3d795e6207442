"""The outbox's job kinds: the `kind` strings stored in `outbox.kind`, named once.

Shared by the slice that enqueues a kind, the worker that runs it and the dashboard that
shows it, so none of them imports another slice for a name (issue 13 item 1). The strings
themselves are declared once, with each kind's payload, in jobs/payloads.py.
"""

from __future__ import annotations

from typing import Final

from whatsapp_helpdesk.jobs import payloads

PUBLISH_INBOUND: Final = payloads.PublishInbound.KIND  # inbound/publish.py
FETCH_MEDIA: Final = payloads.FetchMedia.KIND  # inbound/media.py
SEND_REPLY: Final = payloads.SendReply.KIND  # replies/reply.py
REPORT_STATUS: Final = payloads.ReportStatus.KIND  # replies/statuses.py
REENGAGEMENT_NOTE: Final = payloads.ReengagementNote.KIND  # replies/reengagement.py
REFRESH_NUMBERS: Final = payloads.RefreshNumbers.KIND  # connect/numbers_refresh.py
SYNC_NUMBER: Final = payloads.SyncNumber.KIND  # connect/numbers_refresh.py (a number.* webhook)
NATIVE_TICKET: Final = payloads.NativeTicket.KIND  # native_tickets/tickets.py
SET_CONTACT_COMPANY: Final = payloads.SetContactCompany.KIND  # native_tickets/contact_company.py

# What a native-ticket job is about (its payload's "kind"), and how the dashboard names it.
MISSED_CALL: Final = "missed_call"
VOICEMAIL: Final = "voicemail"
SMS: Final = "sms"
ACTIVITY_LABELS: Final = {MISSED_CALL: "Missed call", VOICEMAIL: "Voicemail", SMS: "SMS"}
