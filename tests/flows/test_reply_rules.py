"""Which failed sends may be retried (decision 0002). No database, no network. (The pure
rules of a reply, its checks and its status order, are tested in tests/domain.)"""

from __future__ import annotations

import httpx
import pytest

from whatsapp_helpdesk.errors import Permanent, RateLimited, Retryable
from whatsapp_helpdesk.replies.reply import aircall_may_have_sent

# --- Decision 0002: which failed sends may be retried -----------------------------------------


def _transport(cause: Exception) -> Retryable:
    error = Retryable("cut")
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(("error", "may_have_sent"), [
    (Retryable("503", status_code=503), False),
    (RateLimited("429", retry_after=5), False),
    (Permanent("422", status_code=422), False),
    (_transport(httpx.ConnectError("refused")), False),
    (_transport(httpx.ConnectTimeout("slow connect")), False),
    (_transport(httpx.ReadTimeout("no answer")), True),
    (_transport(httpx.RemoteProtocolError("cut mid-answer")), True),
    (Retryable("502", status_code=502), True),
    (Retryable("500", status_code=500), True),
    (Retryable("2xx but not JSON", status_code=200), True),
    (Permanent("2xx without id"), True),
])
def test_R27_only_a_proven_non_send_is_retried(error: Exception, may_have_sent: bool) -> None:
    assert aircall_may_have_sent(error) is may_have_sent  # type: ignore[arg-type]
