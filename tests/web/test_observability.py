"""R45: metrics in Prometheus text format, structured (JSON) logs, a health endpoint — read
from the running service over HTTP while a customer's message goes through it."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog
from harness.stack import Stack
from prometheus_client.parser import text_string_to_metric_families

from whatsapp_helpdesk.logging_redaction import configure_logging


def _samples(stack: Stack) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, parsed as Prometheus text (a parse error fails the test)."""
    answer = stack.bridge.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=")  # exposition format
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """The service's own logging configuration, writing to a buffer."""
    buffer = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = configure_logging("INFO", stream=buffer)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        structlog.reset_defaults()


def test_R45_metrics_count_a_message_in_prometheus_text_format(stack: Stack) -> None:
    stack.connect()
    before = _samples(stack)
    stack.customer_says("Hello, counting me?")
    stack.wait_deliveries()
    stack.drain()
    after = _samples(stack)

    webhooks = "whatsapp_helpdesk_webhooks_total"
    aircall_accepted = sum(
        value - before.get(key, 0.0) for key, value in after.items()
        if key[0] == webhooks and ("source", "aircall") in key[1])
    assert aircall_accepted >= 1, "the message's webhook is not counted"
    published = [key for key, value in after.items()
                 if key[0] == "whatsapp_helpdesk_deliveries_total"
                 and value > before.get(key, 0.0)]
    assert published, "the worker's delivery to HubSpot is not counted"
    assert all(dict(labels)["outcome"] for _, labels in published)
    # A gauge of the spool (R53) is among them, at zero with nothing spooled.
    assert after[("whatsapp_helpdesk_spool_records", ())] == 0.0


@pytest.mark.both_databases
def test_R45_health_endpoint_says_the_database_is_up(stack: Stack) -> None:
    answer = stack.bridge.get("/healthz")
    assert answer.status_code == 200
    health = answer.json()
    assert (health["status"], health["database"]) == ("ok", "ok")


def test_R45_the_worker_logs_json_lines(stack: Stack, json_logs: io.StringIO) -> None:
    """A delivery that fails is logged by the worker as one JSON object per line, with the
    event's name, its level, a timestamp and its fields."""
    stack.connect()
    stack.customer_says("Hello, is this logged?")
    stack.wait_deliveries()
    # HubSpot answers 503 once: the worker logs the failed delivery before retrying it.
    fault = stack.hubspot.post("/_sandbox/faults", json={
        "path_prefix": "/conversations", "method": "POST", "mode": "status", "status": 503,
        "times": 1})
    assert fault.status_code == 201, fault.text
    stack.drain()

    lines = [line for line in json_logs.getvalue().splitlines() if line.strip()]
    assert lines, "nothing was logged"
    events = [json.loads(line) for line in lines]  # every line is JSON
    failed = [e for e in events if e.get("event") == "worker.delivery_failed"]
    assert failed, [e.get("event") for e in events]
    assert failed[0]["level"] == "warning"
    assert failed[0]["timestamp"].startswith("20")
    assert isinstance(failed[0]["outbox_id"], int)
