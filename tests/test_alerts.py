"""Alerts: the sensor picks only new flags, the mart_alerts run reports them, the webhook retries and never fails a run."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest

from orders_pipeline import webhook
from orders_pipeline.alerts import STUCK_ORDERS, TREND_ANOMALIES, flagged_rows
from orders_pipeline.assets.alerts import mart_alerts
from orders_pipeline.sensors import AlertCursor, mart_alerts_sensor
from orders_pipeline.storage import mart_path
from orders_pipeline.webhook import WEBHOOK_URL_ENV, post_json, redact_url

SECRET_PATH = "/hooks/T0SECRET/B0SECRET"


class Receiver:
    """A webhook on 127.0.0.1 answering with the given status codes in turn (the last one repeats)."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.bodies: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.bodies.append(json.loads(body))
                status = receiver.statuses[min(len(receiver.bodies), len(receiver.statuses)) - 1]
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}{SECRET_PATH}?token=s3cr3t"

    def __enter__(self) -> Receiver:
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver_factory() -> Iterator:
    receivers: list[Receiver] = []

    def start(*statuses: int) -> Receiver:
        receivers.append(Receiver(list(statuses)).__enter__())
        return receivers[-1]

    yield start
    for receiver in receivers:
        receiver.__exit__()


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch):
    monkeypatch.setattr(webhook, "BACKOFF_SECONDS", 0.01)


# ----------------------------------------------------------------------------------------------- webhook


def test_a_post_is_delivered_with_the_json_payload(receiver_factory):
    receiver = receiver_factory(200)
    delivery = post_json(receiver.url, {"hello": "world"})
    assert delivery.delivered and delivery.attempts == 1
    assert receiver.bodies == [{"hello": "world"}]


def test_a_receiver_failing_first_is_retried_until_it_succeeds(receiver_factory):
    receiver = receiver_factory(503, 500, 200)
    delivery = post_json(receiver.url, {"n": 1})
    assert delivery.delivered and delivery.attempts == 3
    assert len(receiver.bodies) == 3


def test_a_receiver_that_always_fails_is_given_up_on_without_raising(receiver_factory):
    receiver = receiver_factory(500)
    delivery = post_json(receiver.url, {"n": 1})
    assert not delivery.delivered and delivery.attempts == webhook.ATTEMPTS == len(receiver.bodies)
    assert "HTTP 500" in delivery.describe()


def test_client_errors_are_not_retried_and_unreachable_hosts_do_not_raise(receiver_factory):
    receiver = receiver_factory(404)
    assert post_json(receiver.url, {}).attempts == 1
    closed = receiver_factory(200)
    url = closed.url
    closed.__exit__()
    delivery = post_json(url, {})
    assert not delivery.delivered and "Connection" in delivery.problem


def test_the_webhook_url_is_redacted_to_scheme_host_and_port():
    shown = redact_url("https://hooks.example.com:8443/services/T0SECRET/B0SECRET?token=s3cr3t")
    assert shown == "https://hooks.example.com:8443/…"
    assert "SECRET" not in post_json("http://127.0.0.1:9/x/SECRET", {}, attempts=1).describe()


# ----------------------------------------------------------------------------------------------- sensor + run


def evaluate(landed, cursor: str | None) -> dg.SensorResult | dg.SkipReason:
    return mart_alerts_sensor(dg.build_sensor_context(instance=landed.instance, cursor=cursor))


def flagged(landed) -> dict[str, list[str]]:
    return {mart: sorted(flagged_rows(mart, mart_path(landed.root, mart))) for mart in (STUCK_ORDERS, TREND_ANOMALIES)}


def run_config_of(result: dg.SensorResult) -> dict:
    (request,) = result.run_requests
    return request.run_config["ops"]["mart_alerts"]["config"]


def test_the_first_evaluation_reports_everything_flagged_and_the_next_one_nothing(landed_env):
    now = flagged(landed_env)
    assert now[STUCK_ORDERS] and now[TREND_ANOMALIES]  # the simulator's data does produce alerts
    first = evaluate(landed_env, None)
    config = run_config_of(first)
    assert config["new_stuck_order_ids"] == now[STUCK_ORDERS]
    assert config["new_trend_anomaly_keys"] == now[TREND_ANOMALIES]
    assert isinstance(evaluate(landed_env, first.cursor), dg.SkipReason)  # no refresh since


def test_only_flags_not_reported_before_are_new(landed_env):
    now = flagged(landed_env)
    reported = {STUCK_ORDERS: now[STUCK_ORDERS][1:], TREND_ANOMALIES: now[TREND_ANOMALIES]}
    result = evaluate(landed_env, AlertCursor(seen={}, reported=reported).dump())
    config = run_config_of(result)
    assert config["new_stuck_order_ids"] == now[STUCK_ORDERS][:1]
    assert config["new_trend_anomaly_keys"] == []
    assert AlertCursor.parse(result.cursor).reported == now  # bounded: what is flagged now


def test_a_refresh_with_nothing_new_moves_the_cursor_without_a_run(landed_env):
    result = evaluate(landed_env, AlertCursor(seen={}, reported=flagged(landed_env)).dump())
    assert isinstance(result, dg.SensorResult) and not result.run_requests
    assert "nothing newly flagged" in result.skip_reason.skip_message


def materialize_alerts(landed, monkeypatch, url: str | None, instance=None) -> dg.ExecuteInProcessResult:
    if url:
        monkeypatch.setenv(WEBHOOK_URL_ENV, url)
    else:
        monkeypatch.delenv(WEBHOOK_URL_ENV, raising=False)
    result = evaluate(landed, None)
    (request,) = result.run_requests
    return dg.materialize([mart_alerts], run_config=request.run_config, instance=instance or dg.DagsterInstance.ephemeral())


def alert_metadata(result: dg.ExecuteInProcessResult) -> dict:
    (materialization,) = result.asset_materializations_for_node("mart_alerts")
    return {name: value.value for name, value in materialization.metadata.items()}


def test_the_alert_run_posts_after_a_failed_attempt_and_records_everything_without_the_url(landed_env, monkeypatch, receiver_factory):
    receiver = receiver_factory(500, 200)
    instance = dg.DagsterInstance.ephemeral()
    result = materialize_alerts(landed_env, monkeypatch, receiver.url, instance)
    assert result.success
    metadata = alert_metadata(result)
    now = flagged(landed_env)
    assert metadata["new_stuck_orders"] == len(now[STUCK_ORDERS])
    assert metadata["new_trend_anomalies"] == len(now[TREND_ANOMALIES])
    assert now[STUCK_ORDERS][0] in metadata["alerts"]
    assert metadata["webhook"].startswith("delivered") and "attempt 2" in metadata["webhook"]
    body = receiver.bodies[-1]
    assert sorted(row["amazon_order_id"] for row in body["new_stuck_orders"]) == now[STUCK_ORDERS]
    assert len(body["new_sku_trend_anomalies"]) == len(now[TREND_ANOMALIES])
    logs = "\n".join(entry.user_message for entry in instance.all_logs(result.run_id)) + json.dumps(metadata)
    assert "SECRET" not in logs and "s3cr3t" not in logs
    assert "new stuck orders" in logs and "stuck: " in logs


def test_a_webhook_that_always_fails_does_not_fail_the_run(landed_env, monkeypatch, receiver_factory):
    receiver = receiver_factory(500)
    result = materialize_alerts(landed_env, monkeypatch, receiver.url)
    assert result.success
    assert alert_metadata(result)["webhook"].startswith("NOT delivered")
    assert len(receiver.bodies) == webhook.ATTEMPTS


def test_without_a_webhook_the_alerts_are_still_in_logs_and_metadata(landed_env, monkeypatch):
    result = materialize_alerts(landed_env, monkeypatch, None)
    assert result.success
    assert "not configured" in alert_metadata(result)["webhook"]
