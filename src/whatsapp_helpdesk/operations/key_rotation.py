"""Re-encrypt every stored OAuth token with the first SECRET_KEY (issue 12, item 6).

Run after putting a new key in front of the old one (SECRET_KEY=new,old); once it has
finished, the old key can be removed. One installation per transaction, so a run that is
interrupted can simply be started again (a token already under the first key is rewritten
under the same key).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select

from whatsapp_helpdesk.bootstrap import Services
from whatsapp_helpdesk.db.models import Installation

ENCRYPTED_COLUMNS = ("hubspot_access_token_enc", "hubspot_refresh_token_enc",
                     "aircall_access_token_enc")


@dataclass
class RotationReport:
    installations: int = 0
    tokens: int = 0
    failed: int = 0  # tokens no key opens: left as they are, re-authorise those installations


def rotate_keys(services: Services, progress: Callable[[str], None] = print) -> RotationReport:
    report = RotationReport()
    with services.sessions() as session:
        ids = list(session.scalars(select(Installation.id).order_by(Installation.id)))
    for done, installation_id in enumerate(ids, start=1):
        with services.sessions.begin() as session:
            installation = session.get(Installation, installation_id, with_for_update=True)
            if installation is None:
                continue
            for column in ENCRYPTED_COLUMNS:
                value = getattr(installation, column)
                if not value:
                    continue
                try:
                    setattr(installation, column, services.cipher.rotate(value))
                    report.tokens += 1
                except ValueError:
                    report.failed += 1
        report.installations += 1
        progress(f"installation {installation_id}: {done}/{len(ids)}")
    progress(f"{report.tokens} tokens re-encrypted with the first SECRET_KEY"
             + (f"; {report.failed} could not be decrypted (re-authorise those)"
                if report.failed else ""))
    return report
