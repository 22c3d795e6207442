"""A job kind is declared in its payload class's header: `kind`, `label` and whether the
dashboard may retry it (jobs/payloads.py)."""

from __future__ import annotations

import pytest

from whatsapp_helpdesk.jobs import payloads
from whatsapp_helpdesk.jobs.payloads import JobPayload


@pytest.fixture(autouse=True)
def _own_kinds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(payloads, "KINDS", {})


def test_the_header_names_the_kind_and_registers_it() -> None:
    class Tidy(JobPayload, kind="tidy", label="Tidying", retry_from_dashboard=False):
        room: str

    assert (Tidy.KIND, Tidy.LABEL, Tidy.RETRY_FROM_DASHBOARD) == ("tidy", "Tidying", False)
    assert {"tidy": Tidy} == payloads.KINDS
    assert Tidy(room="attic").room == "attic"
    assert JobPayload.RETRY_FROM_DASHBOARD is True


def test_a_kind_without_a_label_or_declared_twice_is_refused() -> None:
    with pytest.raises(TypeError, match="'bare' has no label"):
        class Bare(JobPayload, kind="bare"):
            pass
    class First(JobPayload, kind="twice", label="Once"):
        pass
    with pytest.raises(TypeError, match="'twice' declared twice"):
        class Second(JobPayload, kind="twice", label="Again"):
            pass
    assert {"twice": First} == payloads.KINDS
