"""Sandbox extension for tests and benchmarks: more companies, each with its own budget."""

from __future__ import annotations

from aircall_sandbox_harness import Sandbox


def test_R44_an_added_company_installs_lists_its_whatsapp_number_and_has_its_own_limit(
    aircall: Sandbox,
) -> None:
    added = aircall.http.post("/_sandbox/companies", json={"id": 31, "name": "Bench Co"})
    assert added.status_code == 201, added.text
    assert added.json()["number_id"] == 31001
    assert aircall.http.post("/_sandbox/companies",
                             json={"id": 31, "name": "Again"}).status_code == 409
    assert aircall.http.post("/_sandbox/companies", json={"id": "x"}).status_code == 400

    aircall.configure(rate_limit_per_minute=2)
    with aircall.bearer(aircall.oauth_token(company_id=31)) as bench, \
            aircall.bearer(aircall.oauth_token(company_id=1)) as demo:
        numbers = bench.get("/v1/numbers").json()["numbers"]
        assert [n["id"] for n in numbers] == [31001]
        status = bench.get("/v1/numbers/31001/whatsapp_status")
        assert status.status_code == 200 and status.json()["status"] == "ONLINE"
        assert bench.get("/v1/ping").status_code == 429  # its third call this minute
        assert demo.get("/v1/ping").status_code == 200  # another company's budget

    aircall.http.post("/_sandbox/reset")
    assert aircall.http.post("/_sandbox/companies",
                             json={"id": 31, "name": "Bench Co"}).status_code == 201
