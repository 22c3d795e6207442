"""The fixed world every sandbox starts in (and returns to on reset).

Company 1 has five numbers so each eligibility condition of R3 is visible:
1001 calls+SMS+WhatsApp, 1002 no WhatsApp, 1003 WhatsApp without SMS, 1004 calls only,
1005 WhatsApp still PENDING. Company 2 exists for cross-tenant tests. WhatsApp templates
(R52): 1001 has approved ones with 0, 1 and 2 variables, a pending and a paused one.
"""

from __future__ import annotations

from datetime import UTC, datetime

from whatsapp_helpdesk.sandbox.aircall import constants
from whatsapp_helpdesk.sandbox.aircall.config import SandboxConfig
from whatsapp_helpdesk.sandbox.aircall.state import (
    Company,
    Contact,
    Integration,
    Number,
    SandboxState,
    Template,
    User,
    WhatsAppLine,
)

SEED_CREATED_AT = datetime(2024, 1, 15, 9, 0, tzinfo=UTC)

COMPANIES = (
    Company(1, "Demo Company", True, "sandbox-api-id", "sandbox-api-token"),
    Company(2, "Other Company", True, "sandbox-api-id-2", "sandbox-api-token-2"),
)

USERS = (
    User(501, 1, "Alice Martin", "alice.martin@demo-company.test", SEED_CREATED_AT),
    User(502, 1, "Bruno Leroy", "bruno.leroy@demo-company.test", SEED_CREATED_AT),
    User(503, 1, "Chloé Dubois", "chloe.dubois@demo-company.test", SEED_CREATED_AT,
         available=False),
    User(601, 2, "Dana Smith", "dana.smith@other-company.test", SEED_CREATED_AT,
         time_zone="Europe/London"),
    User(602, 2, "Eli Jones", "eli.jones@other-company.test", SEED_CREATED_AT,
         time_zone="Europe/London"),
)

CONTACTS = (
    Contact(701, 1, "Jane", "Doe", "+33612345678", "Doe Industries", "jane.doe@example.com"),
    Contact(702, 1, "Max", "Mustermann", "+4915112345678", None, "max@example.de"),
    Contact(703, 1, "John", "Smith", "+447700900123", "Smith & Co", None),
    Contact(801, 2, "Paul", "Martin", "+33698765432", None, "paul.martin@example.fr"),
)


def _online_line(waba_id: str) -> WhatsAppLine:
    return WhatsAppLine(waba_id=waba_id, status="ONLINE", can_send_message=True)


def _numbers() -> list[Number]:
    created = SEED_CREATED_AT
    return [
        Number(1001, 1, "Support France", "+33176360695", "FR", "Europe/Paris", created,
               sms=True, whatsapp=_online_line("104857600001"), user_ids=[501, 502, 503]),
        Number(1002, 1, "Sales UK", "+442079460958", "GB", "Europe/London", created,
               sms=True, whatsapp=None, user_ids=[502]),
        Number(1003, 1, "Berlin Service", "+4930901820", "DE", "Europe/Berlin", created,
               sms=False, whatsapp=_online_line("104857600003"), user_ids=[501]),
        Number(1004, 1, "Madrid", "+34911234567", "ES", "Europe/Madrid", created,
               sms=False, whatsapp=None, user_ids=[503]),
        Number(1005, 1, "US Support", "+14155550100", "US", "America/Los_Angeles", created,
               sms=True,
               whatsapp=WhatsAppLine(
                   waba_id="104857600005", status="PENDING", can_send_message=False,
                   messaging_limit_tier="TIER_250", quality_rating="UNKNOWN",
                   business_verification_status="PENDING",
               ),
               user_ids=[501, 502]),
        Number(2001, 2, "Other Support", "+33176360700", "FR", "Europe/Paris", created,
               sms=True, whatsapp=_online_line("204857600001"), user_ids=[601, 602]),
        Number(2002, 2, "Other Sales", "+442079460999", "GB", "Europe/London", created,
               sms=True, whatsapp=None, user_ids=[602]),
    ]


def _templates() -> list[Template]:
    """Support France has one template of each kind the bridge must handle: approved with
    0, 1 and 2 variables, pending, and paused (R52); the others one approved each."""
    return [
        Template(9101, 1, 1001, "104857600001", "reply_waiting", "UTILITY", "APPROVED", "en",
                 "Hello, we have answered your request: {{1}} Reply to this message to "
                 "continue the conversation."),
        Template(9102, 1, 1001, "104857600001", "we_answered", "UTILITY", "APPROVED", "fr",
                 "Bonjour, nous avons répondu à votre demande. Répondez à ce message pour "
                 "lire notre réponse."),
        Template(9103, 1, 1001, "104857600001", "order_update", "UTILITY", "APPROVED", "en",
                 "Hello {{1}}, your order {{2}} has an update. Reply to this message."),
        Template(9104, 1, 1001, "104857600001", "spring_offer", "MARKETING", "PENDING", "en",
                 "Our spring offer is here: {{1}}"),
        Template(9105, 1, 1001, "104857600001", "weekly_digest", "MARKETING", "PAUSED", "en",
                 "Your weekly digest: {{1}}"),
        Template(9301, 1, 1003, "104857600003", "antwort_bereit", "UTILITY", "APPROVED", "de",
                 "Hallo, wir haben Ihnen geantwortet: {{1}}"),
        Template(9401, 2, 2001, "204857600001", "reply_waiting", "UTILITY", "APPROVED", "en",
                 "Hello, we have answered your request: {{1}}"),
    ]


def seeded_state() -> SandboxState:
    """A fresh state with the fixed seed and default configuration."""
    state = SandboxState(config=SandboxConfig())
    state.companies = {c.id: Company(**vars(c)) for c in COMPANIES}
    state.users = {u.id: User(**vars(u)) for u in USERS}
    state.contacts = {c.id: Contact(**vars(c)) for c in CONTACTS}
    state.numbers = {n.id: n for n in _numbers()}
    state.templates = {t.id: t for t in _templates()}
    for company in state.companies.values():
        admin = min(u.id for u in state.users.values() if u.company_id == company.id)
        state.integrations[company.id] = Integration(
            id=constants.INTEGRATION_ID_BASE + company.id,
            company_id=company.id,
            admin_user_id=admin,
            number_ids=[n.id for n in state.live_numbers(company.id)],
        )
    return state
