"""The integration dashboard's reads (R6–R10, R35, R36); its actions are dashboard/actions.py.

Every function takes the signed-in installation's id and touches only that installation's
rows: a number, a delivery or a channel of another installation is simply "not found"
(R10), never a different answer that would reveal it exists.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal, Protocol

import structlog
from sqlalchemy import ColumnElement, exists, func, literal_column, select
from sqlalchemy.orm import Session

from whatsapp_helpdesk.dashboard.ports import DashboardDeps
from whatsapp_helpdesk.db import outbox
from whatsapp_helpdesk.db.job_kinds import (
    ACTIVITY_LABELS,
    NATIVE_TICKET,
    SEND_REPLY,
    SET_CONTACT_COMPANY,
)
from whatsapp_helpdesk.db.lookups import number_facts
from whatsapp_helpdesk.db.models import (
    ChannelAccount,
    Conversation,
    DeliveryAttempt,
    Installation,
    Message,
    Number,
    OutboxEntry,
)
from whatsapp_helpdesk.domain import statuses
from whatsapp_helpdesk.domain.eligibility import (
    InstallationFacts,
    MissingInWords,
    company_whatsapp_from_numbers,
    missing_conditions,
)
from whatsapp_helpdesk.hubspot import scopes_missing
from whatsapp_helpdesk.jobs.payloads import KINDS
from whatsapp_helpdesk.operations.webhook_health import read_health as read_webhook_health

log = structlog.get_logger(__name__)


class TemplateShown(Protocol):
    """What the page shows of a number's re-engagement template (R52): the replies slice's
    `TemplateChoice` is one."""

    @property
    def options(self) -> Sequence[Any]: ...
    @property
    def listed_at(self) -> datetime | None: ...
    @property
    def chosen_id(self) -> str | None: ...
    @property
    def chosen_name(self) -> str | None: ...
    @property
    def chosen_language(self) -> str | None: ...
    @property
    def fills_text(self) -> bool: ...
    @property
    def problem(self) -> str | None: ...
    @property
    def usable(self) -> bool: ...


@dataclass(frozen=True)
class OtherSlicesReads:
    """Ports: what the page reads of other slices' state, wired at the edge
    (web/dashboard_routes.py DASHBOARD_READS), so this slice imports neither connect nor
    replies."""

    # What to say about the numbers refresh (connect), read before the page's session.
    refresh_status: Callable[[DashboardDeps, int], str | None]
    # Each page number's re-engagement template (replies), in the page's session.
    templates: Callable[[Session, list[int]], Mapping[int, TemplateShown]]

Setting = Literal["connected_to_hubspot", "helpdesk_enabled", "native_ticketing"]
SETTINGS: Final[dict[str, str]] = {
    "connected_to_hubspot": "Connected to HubSpot",
    "helpdesk_enabled": "Help Desk",
    "native_ticketing": "Native ticketing",
}
# R3 (d) and (e) are what make a number the help desk's channel: they stay on while it is.
CHANNEL_SETTINGS: Final = frozenset({"connected_to_hubspot", "helpdesk_enabled"})

# What each kind of job is called, and whether the dashboard may run a failed one again, are
# declared with the kind (jobs/payloads.py): a failed reply is not (R23).
KIND_LABELS: Final[dict[str, str]] = {kind: job.LABEL for kind, job in KINDS.items()}
NOT_RETRYABLE: Final = frozenset(
    kind for kind, job in KINDS.items() if not job.RETRY_FROM_DASHBOARD
)
FAILED_SHOWN: Final = 50  # newest failed deliveries listed per installation
PAGE_SIZE: Final = 50  # numbers per dashboard page (5,005 on one page made 13.3 MB)
MAX_SEARCH: Final = 100  # characters of a number search kept (R43: bounded input)

HUBSPOT_INSTALL_URL: Final = "/oauth/hubspot/install"
AIRCALL_INSTALL_URL: Final = "/oauth/aircall/install"


class NotFound(LookupError):
    """Not a thing of this installation (it may exist elsewhere: we do not say)."""


# --- What the pages show --------------------------------------------------------------------


@dataclass(frozen=True)
class Attention:
    """A banner (R8): what is wrong and the button that fixes it."""

    message: str
    action_url: str
    action_label: str


@dataclass(frozen=True)
class InstallationSummary:
    id: int
    hubspot_portal_id: str | None
    aircall_company_name: str | None
    attention: list[Attention]


@dataclass(frozen=True)
class FailedDelivery:
    outbox_id: int
    what: str
    summary: str
    reason: str
    failed_at: datetime | None
    attempts: int
    retryable: bool
    # A reply refused before sending (R25, R24…) fails as a message, its job is done: such
    # a failure has no failed job to point at, only its message.
    message_id: int | None = None

    @property
    def element_id(self) -> str:
        if self.outbox_id:
            return f"delivery-{self.outbox_id}"
        return f"reply-{self.message_id}"


@dataclass(frozen=True)
class Health:
    """One number's traffic (R9)."""

    last_in: datetime | None = None
    last_out: datetime | None = None
    waiting: int = 0
    native_tickets: int = 0
    failed: list[FailedDelivery] = field(default_factory=list)  # the newest FAILED_SHOWN
    failed_total: int = 0  # all of them: the count the page shows

    @property
    def quiet(self) -> bool:
        return not (self.last_in or self.last_out or self.waiting or self.failed
                    or self.native_tickets)


@dataclass(frozen=True)
class ChannelInfo:
    name: str
    hubspot_channel_account_id: str | None
    connected_at: datetime


@dataclass(frozen=True)
class NumberView(MissingInWords):
    id: int
    name: str
    digits: str
    calls: bool
    sms: bool
    whatsapp: bool
    whatsapp_status: str | None
    connected_to_hubspot: bool
    helpdesk_enabled: bool
    native_ticketing: bool
    channel: ChannelInfo | None
    missing: list[str]
    health: Health
    reconnectable: bool = False  # disconnected from a channel account HubSpot may re-use
    reengagement: TemplateShown | None = None  # R52: its re-engagement template

    @property
    def helpdesk_rules_apply(self) -> bool:
        """R36: a help-desk channel never gets native tickets; the switch gives way."""
        return self.channel is not None

    @property
    def label(self) -> str:
        return self.name or self.digits


@dataclass(frozen=True)
class DashboardView:
    installation: InstallationSummary
    numbers: list[NumberView]
    company_whatsapp: bool
    company_whatsapp_override: bool | None
    channel_registered: bool
    unattributed_failures: list[FailedDelivery]
    # What the worker's webhook check last had to do, e.g. re-enable it (R53).
    aircall_webhook_note: str | None = None
    # Issue 17 item 6: numbers come PAGE_SIZE at a time, optionally filtered by a search.
    numbers_refresh: str | None = None  # a refresh under way, or when the last one ended
    page: int = 1
    pages: int = 1
    total_numbers: int = 0
    search: str = ""


def attention(installation: Installation) -> list[Attention]:
    """Every reason the installation must re-authenticate or finish its setup (R8)."""
    items: list[Attention] = []
    if installation.reauth_required:
        # The HubSpot authorisation chains into Aircall's, so one button renews both.
        items.append(Attention(installation.reauth_required, HUBSPOT_INSTALL_URL,
                               "Reconnect HubSpot and Aircall"))
    if installation.hubspot_refresh_token_enc:
        missing = scopes_missing((installation.hubspot_scopes or "").split())
        if missing:
            items.append(Attention(
                "HubSpot has not granted this service everything it needs "
                f"(missing: {', '.join(missing)}). Authorise it again to grant them.",
                HUBSPOT_INSTALL_URL, "Re-authorise HubSpot",
            ))
    elif not installation.reauth_required:
        items.append(Attention("HubSpot is not connected.", HUBSPOT_INSTALL_URL,
                               "Connect HubSpot"))
    if not installation.aircall_access_token_enc and not installation.reauth_required:
        items.append(Attention(
            "Aircall is not connected yet, so no number can be listed.",
            AIRCALL_INSTALL_URL, "Connect Aircall",
        ))
    return items


def installation_summary(services: DashboardDeps, installation_id: int) -> InstallationSummary:
    with services.sessions() as session:
        installation = _installation(session, installation_id)
        return InstallationSummary(
            id=installation.id,
            hubspot_portal_id=installation.hubspot_portal_id,
            aircall_company_name=installation.aircall_company_name,
            attention=attention(installation),
        )


def dashboard_view(services: DashboardDeps, reads: OtherSlicesReads, installation_id: int, *,
                   page: int = 1,
                   search: str = "", number_id: int | None = None) -> DashboardView:
    """One page of the dashboard: PAGE_SIZE numbers (those matching `search`, or the one
    `number_id`), and the health of those only (issue 17 item 6: 5,005 numbers made a
    13.3 MB page; every query here now reads the page's numbers, by index)."""
    # Read before the session opens: on SQLite every session takes the write lock, so a
    # second session opened inside the first would wait for it forever.
    channel_registered = bool(services.channel_id())
    webhook_health = read_webhook_health(services, installation_id)
    numbers_refresh = reads.refresh_status(services, installation_id)
    search = search.strip()[:MAX_SEARCH]
    with services.sessions() as session:
        installation = _installation(session, installation_id)
        matching = select(Number).where(Number.installation_id == installation_id,
                                        Number.removed_at.is_(None))
        if number_id is not None:
            matching = matching.where(Number.id == number_id)
        elif search:
            pattern = f"%{_escape_like(search)}%"
            matching = matching.where(
                Number.name.ilike(pattern, escape="\\") | Number.digits.like(pattern, escape="\\")
                | Number.e164.like(pattern, escape="\\")
            )
        total = session.scalar(select(func.count()).select_from(matching.subquery())) or 0
        pages = max(1, -(-total // PAGE_SIZE))
        page = min(max(page, 1), pages)
        numbers = list(session.scalars(
            matching.order_by(Number.id).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)
        ))
        page_ids = [n.id for n in numbers]
        # R3 (b) is a fact of the company, not of the page: any WhatsApp number, by EXISTS.
        any_whatsapp = session.scalar(select(exists().where(
            Number.installation_id == installation_id, Number.whatsapp_enabled.is_(True),
            Number.removed_at.is_(None))))
        facts = InstallationFacts(
            company_whatsapp_enabled=company_whatsapp_from_numbers(
                installation.company_whatsapp_override, [bool(any_whatsapp)]),
            granted_scopes=frozenset((installation.hubspot_scopes or "").split()),
        )
        # Every channel account of the page's numbers in one query, newest first: the live
        # one, and for the others whether the last one may be re-used (as
        # connect/reconnect.previous_account decides, one query per number).
        live: dict[int, ChannelAccount] = {}
        newest: dict[int, ChannelAccount] = {}
        for row in session.scalars(select(ChannelAccount).where(
            ChannelAccount.installation_id == installation_id,
            ChannelAccount.number_id.in_(page_ids),
        ).order_by(ChannelAccount.id.desc())):
            newest.setdefault(row.number_id, row)
            if row.disconnected_at is None:
                live[row.number_id] = row
        health = _health(session, installation_id, page_ids)
        reconnectable = {n for n, row in newest.items() if n not in live
                         and row.disconnected_at is not None and row.hubspot_channel_account_id}
        templates = reads.templates(session, page_ids)
        views = [
            NumberView(
                id=n.id, name=n.name, digits=n.digits or n.e164, calls=n.calls_enabled,
                sms=n.sms_enabled, whatsapp=n.whatsapp_enabled, whatsapp_status=n.whatsapp_status,
                connected_to_hubspot=n.connected_to_hubspot, helpdesk_enabled=n.helpdesk_enabled,
                native_ticketing=n.native_ticketing,
                channel=_channel_info(live.get(n.id)),
                missing=missing_conditions(number_facts(n), facts),
                health=health.pop(n.id, Health()),
                reconnectable=n.id in reconnectable,
                reengagement=templates.get(n.id),
            )
            for n in numbers
        ]
        # What is left belongs to no number of the installation (NO_NUMBER, or a number
        # since deleted): shown on every page under "Other failed deliveries".
        leftover = [f for h in health.values() for f in h.failed]
        return DashboardView(
            installation=InstallationSummary(
                id=installation.id, hubspot_portal_id=installation.hubspot_portal_id,
                aircall_company_name=installation.aircall_company_name,
                attention=attention(installation),
            ),
            numbers=views,
            company_whatsapp=facts.company_whatsapp_enabled,
            company_whatsapp_override=installation.company_whatsapp_override,
            channel_registered=channel_registered,
            unattributed_failures=leftover,
            aircall_webhook_note=webhook_health.sentence() if webhook_health else None,
            numbers_refresh=numbers_refresh,
            page=page, pages=pages, total_numbers=total, search=search,
        )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _installation(session: Session, installation_id: int) -> Installation:
    installation = session.get(Installation, installation_id)
    if installation is None:
        raise NotFound("installation")
    return installation


def _channel_info(row: ChannelAccount | None) -> ChannelInfo | None:
    if row is None:
        return None
    return ChannelInfo(row.name, row.hubspot_channel_account_id, row.connected_at)


# --- Health (R9) --------------------------------------------------------------------------------

# Entries that belong to no number (a message since deleted) are gathered under this key.
NO_NUMBER: Final = 0


def _health(session: Session, installation_id: int, number_ids: list[int]
            ) -> dict[int, Health]:
    """The health of the given numbers, plus failures that belong to no number. Every
    query starts from the page's numbers or from a small index (failed entries, failed
    messages): nothing here reads all of an installation's messages or outbox."""
    conversations = select(Conversation.id).where(Conversation.number_id.in_(number_ids))
    last: dict[int, dict[str, datetime]] = defaultdict(dict)
    for number_id, direction, at in session.execute(
        select(Conversation.number_id, Message.direction, func.max(Message.sent_at))
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Message.conversation_id.in_(conversations))
        .group_by(Conversation.number_id, Message.direction)
    ):
        last[number_id][direction] = at

    waiting = _count_entries(session, installation_id, number_ids, outbox.PENDING)
    # A native-ticket job also ends "done" when it had nothing to do (settings changed):
    # only the ones whose attempt made a ticket count.
    made_ticket = exists().where(
        DeliveryAttempt.outbox_id == OutboxEntry.id, DeliveryAttempt.outcome == "ok",
        DeliveryAttempt.detail.like("ticket %"),
    )
    native = _count_entries(session, installation_id, number_ids, outbox.DONE, NATIVE_TICKET,
                            made_ticket)
    failed, failed_total = _failed(session, installation_id)
    # Failures of numbers on other pages are theirs; those of no number (NO_NUMBER, or a
    # number since deleted) are shown on every page.
    other = set(failed_total) - set(number_ids) - {NO_NUMBER}
    existing = set(session.scalars(select(Number.id).where(
        Number.installation_id == installation_id, Number.id.in_(other)))) if other else set()

    keys = (set(last) | set(waiting) | set(native) | set(failed_total)) - existing
    return {
        key: Health(
            last_in=last[key].get("inbound"), last_out=last[key].get("outbound"),
            waiting=waiting.get(key, 0), native_tickets=native.get(key, 0),
            failed=failed.get(key, []), failed_total=failed_total.get(key, 0),
        )
        for key in keys
    }


def _count_entries(
    session: Session, installation_id: int, number_ids: list[int] | None, state: str,
    kind: str | None = None, *conditions: ColumnElement[bool],
) -> dict[int, int]:
    """How many entries in `state` concern each of the numbers (None: every number, and
    NO_NUMBER), counted in SQL: entries of a message through its conversation, the others
    (native tickets) by their payload."""
    of_state = [OutboxEntry.installation_id == installation_id, OutboxEntry.state == state,
                *conditions]
    if kind is not None:
        of_state.append(OutboxEntry.kind == kind)
    counts: dict[int, int] = defaultdict(int)
    of_messages = (
        select(Conversation.number_id, func.count())
        .select_from(OutboxEntry)
        .join(Message, Message.id == OutboxEntry.message_id)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(*of_state)
        .group_by(Conversation.number_id)
    )
    if number_ids is not None:
        of_messages = of_messages.where(Conversation.number_id.in_(number_ids))
    for number_id, count in session.execute(of_messages):
        counts[number_id] += count
    for (payload,) in session.execute(
        select(OutboxEntry.payload).where(*of_state, OutboxEntry.message_id.is_(None))
    ):
        number_id = _payload_number_of(payload)
        if number_ids is None or number_id in number_ids:
            counts[number_id] += 1
    return counts


def _entries(
    session: Session, installation_id: int, states: list[str], kind: str | None = None,
    *conditions: ColumnElement[bool], newest_first: int | None = None,
) -> list[tuple[OutboxEntry, int]]:
    """Outbox entries of the installation, each with the number it concerns."""
    query = (
        select(OutboxEntry, Conversation.number_id)
        .outerjoin(Message, Message.id == OutboxEntry.message_id)
        .outerjoin(Conversation, Conversation.id == Message.conversation_id)
        .where(OutboxEntry.installation_id == installation_id, OutboxEntry.state.in_(states))
    )
    if kind is not None:
        query = query.where(OutboxEntry.kind == kind)
    if conditions:
        query = query.where(*conditions)
    if newest_first is not None:
        query = query.order_by(OutboxEntry.id.desc()).limit(newest_first)
    return [(entry, number_id or _payload_number(entry)) for entry, number_id in
            session.execute(query)]


def _payload(entry: OutboxEntry) -> dict[str, Any]:
    return _payload_of(entry.payload)


def _payload_of(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _payload_number(entry: OutboxEntry) -> int:
    return _payload_number_of(entry.payload)


def _payload_number_of(payload: str | None) -> int:
    """Jobs without a message (native tickets) name their number in the payload."""
    value = _payload_of(payload).get("number_id")
    return value if isinstance(value, int) else NO_NUMBER


def _failed(
    session: Session, installation_id: int
) -> tuple[dict[int, list[FailedDelivery]], dict[int, int]]:
    """Per number: the newest failures (failed jobs, and replies refused before sending,
    whose job is done), and how many there are in all (issue 15: the count on the page
    is the number of failures, not of the ones listed)."""
    totals = _count_entries(session, installation_id, None, outbox.FAILED)
    refused = (
        select(Message, Conversation.number_id)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Message.installation_id == installation_id, Message.direction == "outbound",
               # A literal, not a bound parameter: only then may either database use the
               # partial index on failed messages (ix_messages_failed, migration 0011).
               Message.status == literal_column(f"'{statuses.FAILED}'"),
               ~exists().where(OutboxEntry.message_id == Message.id,
                               OutboxEntry.state == outbox.FAILED))
    )
    counted = refused.subquery()
    for number_id, count in session.execute(
        select(counted.c.number_id, func.count()).group_by(counted.c.number_id)
    ):
        totals[number_id] += count
    grouped = _failed_jobs(session, installation_id)
    for message, number_id in session.execute(
        refused.order_by(Message.id.desc()).limit(FAILED_SHOWN)
    ):
        grouped[number_id].append(FailedDelivery(
            outbox_id=0, what=KIND_LABELS[SEND_REPLY], summary=_summary_text(message.text),
            reason=message.failure_reason or "No reason was recorded.",
            failed_at=message.stored_at, attempts=0, retryable=False, message_id=message.id,
        ))
    for failures in grouped.values():
        failures.sort(key=lambda f: f.failed_at or datetime.min.replace(tzinfo=UTC),
                      reverse=True)
    return grouped, totals


def _failed_jobs(session: Session, installation_id: int) -> dict[int, list[FailedDelivery]]:
    rows = _entries(session, installation_id, [outbox.FAILED], newest_first=FAILED_SHOWN)
    ids = [entry.id for entry, _ in rows]
    last_detail: dict[int, str | None] = {}
    if ids:
        latest = (
            select(DeliveryAttempt.outbox_id, func.max(DeliveryAttempt.id).label("id"))
            .where(DeliveryAttempt.outbox_id.in_(ids))
            .group_by(DeliveryAttempt.outbox_id)
            .subquery()
        )
        for outbox_id, detail in session.execute(
            select(DeliveryAttempt.outbox_id, DeliveryAttempt.detail)
            .join(latest, latest.c.id == DeliveryAttempt.id)
        ):
            last_detail[outbox_id] = detail
    message_ids = [e.message_id for e, _ in rows if e.message_id is not None]
    # By primary key only, and not at all when there is none: given "installation_id = ?
    # AND id IN (empty)", SQLite read every message of the installation (0.7 s at 10^6).
    messages = {
        m.id: m for m in session.scalars(select(Message).where(Message.id.in_(message_ids)))
        if m.installation_id == installation_id
    } if message_ids else {}
    grouped: dict[int, list[FailedDelivery]] = defaultdict(list)
    for entry, number_id in rows:
        message = messages.get(entry.message_id) if entry.message_id is not None else None
        reason = (entry.last_error or (message.failure_reason if message else None)
                  or last_detail.get(entry.id) or "No reason was recorded.")
        grouped[number_id].append(FailedDelivery(
            outbox_id=entry.id,
            what=KIND_LABELS.get(entry.kind, entry.kind),
            summary=_summary(entry, message),
            reason=reason,
            failed_at=entry.finished_at,
            attempts=entry.attempts,
            retryable=entry.kind not in NOT_RETRYABLE,
        ))
    return grouped


def _summary_text(text: str) -> str:
    return f"“{text if len(text) <= 80 else text[:79] + '…'}”"


def _summary(entry: OutboxEntry, message: Message | None) -> str:
    if message is not None:
        return _summary_text(message.text)
    payload = _payload(entry)
    if entry.kind == NATIVE_TICKET:
        label = ACTIVITY_LABELS.get(str(payload.get("kind")), "Activity")
        who = payload.get("customer_name") or payload.get("customer") or "unknown number"
        return f"{label} from {who}"
    if entry.kind == SET_CONTACT_COMPANY:
        return f"“{payload.get('company', '')}”"
    return ""
