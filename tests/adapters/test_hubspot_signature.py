"""HubSpot signature v3 (reference §5; R42): signatures are computed here by hand, never with
the production code."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from whatsapp_helpdesk.hubspot import InvalidSignature, verify_signature_v3

SECRET = "hubspot-client-secret"
URL = "https://bridge.example.com/hubspot/webhook?portal=1"
BODY = b'{"type":"OUTGOING_CHANNEL_MESSAGE_CREATED"}'
NOW_MS = 1767258000000  # 2026-01-01T09:00:00Z
FIVE_MINUTES_MS = 300_000


def hand_signature(secret: str, method: str, uri_as_hashed: str, body: bytes, ts: str) -> str:
    """base64(HMAC-SHA256(secret, method + uri + body + timestamp)), written out by hand."""
    source = method.encode() + uri_as_hashed.encode() + body + ts.encode()
    return base64.b64encode(hmac.new(secret.encode(), source, hashlib.sha256).digest()).decode()


def verify(*, url: str = URL, body: bytes = BODY, ts: int | str | None = NOW_MS,
           signature: str | None = None, secret: str = SECRET, method: str = "POST",
           now_ms: int = NOW_MS) -> None:
    timestamp = None if ts is None else str(ts)
    if signature is None:
        signature = hand_signature(SECRET, "POST", url, body, timestamp or "")
    verify_signature_v3(method=method, url=url, raw_body=body, timestamp_header=timestamp,
                        signature_header=signature, client_secret=secret, now_ms=now_ms)


def test_r42_known_vector_from_openssl() -> None:
    # printf '%s' 'POST<URL><BODY><ts>' | openssl dgst -sha256 -hmac <secret> -binary | base64
    verify(signature="F+lGk7JB6bew5LThFqnclMfb9HMCdCb9gXa2WHagn88=")


def test_r42_hand_computed_signature_verifies() -> None:
    assert hand_signature(SECRET, "POST", URL, BODY, str(NOW_MS)) == (
        "F+lGk7JB6bew5LThFqnclMfb9HMCdCb9gXa2WHagn88="
    )
    verify()


def test_utf8_body_is_hashed_as_its_raw_bytes() -> None:
    body = '{"text":"Merci, à bientôt 👋"}'.encode()
    verify(body=body)


def test_method_is_compared_in_upper_case() -> None:
    verify(method="post")


@pytest.mark.parametrize(
    ("called_url", "hashed_url"),
    [
        # HubSpot decodes these escapes (and only these) before hashing (§5 step 3).
        ("https://bridge.example.com/hook?next=https%3A%2F%2Fx.example%2Fa%3Fb%40c",
         "https://bridge.example.com/hook?next=https://x.example/a?b@c"),
        ("https://bridge.example.com/hook?s=%21%24%27%28%29%2A%2C%3B",
         "https://bridge.example.com/hook?s=!$'()*,;"),
        # lower-case hex is the same escape (RFC 3986 §2.1)
        ("https://bridge.example.com/hook?next=a%3ab%2fc", "https://bridge.example.com/hook?next=a:b/c"),
        # other escapes stay as they are
        ("https://bridge.example.com/hook?q=a%20b%26c%3D", "https://bridge.example.com/hook?q=a%20b%26c%3D"),
        # one pass only: %253A is "%3A" literally, not ":"
        ("https://bridge.example.com/hook?q=%253A", "https://bridge.example.com/hook?q=%253A"),
    ],
)
def test_uri_is_decoded_per_hubspots_table(called_url: str, hashed_url: str) -> None:
    signature = hand_signature(SECRET, "POST", hashed_url, BODY, str(NOW_MS))
    verify(url=called_url, signature=signature)


def test_fully_decoding_the_uri_is_not_what_hubspot_hashes() -> None:
    called = "https://bridge.example.com/hook?q=a%20b"
    signature = hand_signature(SECRET, "POST", "https://bridge.example.com/hook?q=a b", BODY,
                               str(NOW_MS))
    with pytest.raises(InvalidSignature):
        verify(url=called, signature=signature)


@pytest.mark.parametrize(
    ("age_ms", "accepted"),
    [(0, True), (FIVE_MINUTES_MS, True), (FIVE_MINUTES_MS + 1, False), (3_600_000, False),
     (-60_000, True), (-FIVE_MINUTES_MS - 1, False), (-86_400_000, False)],
)
def test_r42_timestamp_window(age_ms: int, accepted: bool) -> None:
    ts = NOW_MS - age_ms
    if accepted:
        verify(ts=ts)
    else:
        with pytest.raises(InvalidSignature):
            verify(ts=ts)


def test_wrong_secret_is_refused() -> None:
    signature = hand_signature("another-secret", "POST", URL, BODY, str(NOW_MS))
    with pytest.raises(InvalidSignature, match="does not match"):
        verify(signature=signature)


def test_tampered_body_is_refused() -> None:
    signature = hand_signature(SECRET, "POST", URL, BODY, str(NOW_MS))
    with pytest.raises(InvalidSignature):
        verify(body=BODY.replace(b"OUTGOING", b"INCOMING"), signature=signature)


def test_tampered_timestamp_is_refused() -> None:
    signature = hand_signature(SECRET, "POST", URL, BODY, str(NOW_MS))
    with pytest.raises(InvalidSignature):
        verify(ts=NOW_MS - 1000, signature=signature)


def test_other_url_is_refused() -> None:
    signature = hand_signature(SECRET, "POST", URL, BODY, str(NOW_MS))
    with pytest.raises(InvalidSignature):
        verify(url="https://bridge.example.com/hubspot/webhook?portal=2", signature=signature)


@pytest.mark.parametrize(
    "changes",
    [{"ts": None}, {"ts": "not-a-number"}, {"ts": ""}, {"signature": ""}, {"secret": ""}],
)
def test_missing_or_malformed_inputs_are_refused(changes: dict[str, str | None]) -> None:
    arguments: dict[str, object] = {
        "signature": hand_signature(SECRET, "POST", URL, BODY, str(NOW_MS))
    }
    arguments.update(changes)
    with pytest.raises(InvalidSignature):
        verify(**arguments)  # type: ignore[arg-type]
