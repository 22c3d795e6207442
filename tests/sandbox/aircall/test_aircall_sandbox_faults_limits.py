"""Rate limit (§A3) and injected faults, seen by an httpx client through uvicorn."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from aircall_sandbox_harness import BASIC_1, Sandbox, ServerThread

from whatsapp_helpdesk.sandbox.aircall import create_app


def _fault(aircall: Sandbox, **body: object) -> dict:
    response = aircall.http.post("/_sandbox/faults", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json()["fault"])


# --- rate limit -------------------------------------------------------------------------------


def test_rate_limit_429_with_aircall_headers(aircall: Sandbox) -> None:
    aircall.configure(rate_limit_per_minute=3)
    now = int(time.time())
    for remaining in (2, 1, 0):
        ok = aircall.basic.get("/v1/ping")
        assert ok.status_code == 200
        assert ok.headers["X-AircallApi-Remaining"] == str(remaining)
    limited = aircall.basic.get("/v1/ping")
    assert limited.status_code == 429
    body = limited.json()
    assert body["error"] == "Too many requests"
    assert body["troubleshoot"]
    assert limited.headers["X-AircallApi-Limit"] == "3"
    assert limited.headers["X-AircallApi-Remaining"] == "0"
    reset = int(limited.headers["X-AircallApi-Reset"])
    assert now < reset <= now + 61  # UNIX seconds


def test_rate_limit_is_per_company_and_resets_after_a_minute(aircall: Sandbox) -> None:
    aircall.configure(rate_limit_per_minute=1)
    assert aircall.basic.get("/v1/ping").status_code == 200
    assert aircall.basic.get("/v1/ping").status_code == 429
    assert aircall.basic2.get("/v1/ping").status_code == 200  # company 2 has its own budget
    aircall.advance(60)
    assert aircall.basic.get("/v1/ping").status_code == 200


def test_rejected_credentials_do_not_spend_the_budget(aircall: Sandbox) -> None:
    aircall.configure(rate_limit_per_minute=1)
    for _ in range(3):
        assert aircall.http.get("/v1/ping", auth=("sandbox-api-id", "bad")).status_code == 403
    assert aircall.basic.get("/v1/ping").status_code == 200


# --- faults -----------------------------------------------------------------------------------


def test_status_fault_answers_n_times_then_clears_itself(aircall: Sandbox) -> None:
    fault = _fault(aircall, path_prefix="/v1/numbers", method="GET", mode="status", status=503,
                   times=2)
    assert fault["times"] == 2 and fault["mode"] == "status"
    for _ in range(2):
        response = aircall.basic.get("/v1/numbers")
        assert response.status_code == 503
        assert response.json() == {"message": "Service Unavailable"}
    assert aircall.basic.get("/v1/numbers").status_code == 200
    assert aircall.http.get("/_sandbox/faults").json() == {"faults": []}


def test_fault_matches_method_and_prefix_only(aircall: Sandbox) -> None:
    _fault(aircall, path_prefix="/v1/messages", method="POST", mode="status", status=500)
    assert aircall.basic.get("/v1/numbers").status_code == 200
    assert aircall.basic.get("/v1/messages/whatever").status_code == 404  # GET not faulted
    response = aircall.basic.post("/v1/messages/send/whatsapp/native", json={})
    assert response.status_code == 500
    listed = aircall.http.get("/_sandbox/faults").json()["faults"]
    assert listed[0]["hits"] == 1 and listed[0]["times"] is None
    assert aircall.http.delete("/_sandbox/faults").status_code == 204
    assert aircall.http.get("/_sandbox/faults").json() == {"faults": []}


def test_fault_with_a_probability_answers_that_share_of_calls(aircall: Sandbox) -> None:
    """The fault model both emulators share: a fault can hit a share of calls; the calls it
    lets through spend neither a hit nor one of its `times`."""
    aircall.http.post("/_sandbox/config", json={"rate_limit_per_minute": 10_000})
    fault = _fault(aircall, path_prefix="/v1/numbers", mode="status", status=503,
                   probability=0.3)
    assert fault["probability"] == 0.3
    statuses = [aircall.basic.get("/v1/numbers").status_code for _ in range(200)]
    faulted = statuses.count(503)
    assert statuses.count(200) == 200 - faulted
    assert 30 <= faulted <= 90  # binomial(200, 0.3): mean 60, 4.6 standard deviations each way
    assert aircall.http.get("/_sandbox/faults").json()["faults"][0]["hits"] == faulted
    for bad in (0, 1.5, True):
        refused = aircall.http.post("/_sandbox/faults", json={
            "path_prefix": "/v1/numbers", "mode": "drop", "probability": bad})
        assert refused.status_code == 400


def test_rate_limit_fault(aircall: Sandbox) -> None:
    _fault(aircall, path_prefix="/v1/", mode="rate_limit", times=1)
    limited = aircall.basic.get("/v1/ping")
    assert limited.status_code == 429
    assert limited.headers["X-AircallApi-Remaining"] == "0"
    assert int(limited.headers["X-AircallApi-Reset"]) > time.time()
    assert aircall.basic.get("/v1/ping").status_code == 200


def test_slow_fault_delays_then_serves(aircall: Sandbox) -> None:
    _fault(aircall, path_prefix="/v1/ping", mode="slow", delay_seconds=0.4, times=1)
    started = time.monotonic()
    response = aircall.basic.get("/v1/ping")
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.4
    with pytest.raises(httpx.ReadTimeout):
        _fault(aircall, path_prefix="/v1/ping", mode="slow", delay_seconds=1, times=1)
        aircall.basic.get("/v1/ping", timeout=0.2)


def test_drop_fault_is_a_dropped_connection_for_httpx(aircall: Sandbox) -> None:
    _fault(aircall, path_prefix="/v1/messages", mode="drop", times=3)
    for size in (10, 10_000, 1_000_000):  # bodies small and large are drained, then FIN
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            aircall.basic.post(
                "/v1/messages/send/whatsapp/native", json={"lineId": 1001, "text": "x" * size}
            )
    assert aircall.basic.get("/v1/ping").status_code == 200  # the server is fine


def test_delete_one_fault_by_id(aircall: Sandbox) -> None:
    first = _fault(aircall, path_prefix="/v1/ping", mode="status", status=500)
    _fault(aircall, path_prefix="/v1/company", mode="status", status=502)
    assert aircall.http.delete(f"/_sandbox/faults/{first['id']}").status_code == 204
    assert aircall.http.delete(f"/_sandbox/faults/{first['id']}").status_code == 404
    assert aircall.basic.get("/v1/ping").status_code == 200
    assert aircall.basic.get("/v1/company").status_code == 502


def test_control_paths_are_never_faulted(aircall: Sandbox) -> None:
    _fault(aircall, path_prefix="/", mode="status", status=500)
    assert aircall.http.get("/_sandbox/clock").status_code == 200
    assert aircall.basic.get("/v1/ping").status_code == 500


def test_fault_validation(aircall: Sandbox) -> None:
    for body in (
        {"path_prefix": "v1", "mode": "status"},
        {"path_prefix": "/v1", "mode": "explode"},
        {"path_prefix": "/v1", "mode": "status", "status": 42},
        {"path_prefix": "/v1", "mode": "slow", "delay_seconds": -1},
        {"path_prefix": "/v1", "mode": "status", "times": 0},
    ):
        assert aircall.http.post("/_sandbox/faults", json=body).status_code == 400, body


@pytest.fixture(scope="module", params=["h11", "httptools"])
def server_with_http_impl(request: pytest.FixtureRequest) -> Iterator[ServerThread]:
    factory = lambda url: create_app(public_base_url=url)  # noqa: E731
    with ServerThread(factory, http=request.param) as server:
        yield server


def test_drop_works_with_both_uvicorn_http_implementations(
    server_with_http_impl: ServerThread,
) -> None:
    url = server_with_http_impl.url
    with httpx.Client(base_url=url, auth=BASIC_1, timeout=5) as client:
        fault = {"path_prefix": "/v1/ping", "mode": "drop", "times": 2}
        client.post("/_sandbox/faults", json=fault)
        for _ in range(2):
            with pytest.raises(httpx.RemoteProtocolError):
                client.get("/v1/ping")
        assert client.get("/v1/ping").json() == {"ping": "pong"}
