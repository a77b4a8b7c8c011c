"""Alerts: the sensor picks the flags not delivered yet, the mart_alerts run delivers them (or fails), failed runs are sent again."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from orders_pipeline.insights import webhook
from orders_pipeline.defs.alert_cursor import AlertCursor
from orders_pipeline.insights.alerts import (
    ANOMALY_HORIZON_DAYS, MARTS, STUCK_ORDERS, TREND_ANOMALIES, alertable, flagged_rows, new_alerts,
)
from orders_pipeline.defs.assets.alerts import mart_alerts
from orders_pipeline.definitions import defs
from orders_pipeline.defs.sensors import ALERT_BATCH_TAG, mart_alerts_sensor
from orders_pipeline.storage.layout import mart_path
from orders_pipeline.insights.webhook import WEBHOOK_URL_ENV, post_json, redact_url

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


def evaluate(instance: dg.DagsterInstance, cursor: str | None) -> dg.SensorResult | dg.SkipReason:
    return mart_alerts_sensor(dg.build_sensor_context(instance=instance, cursor=cursor))


def flagged(landed) -> dict[str, list[str]]:
    return {mart: sorted(alertable(mart, flagged_rows(mart, mart_path(landed.root, mart)))) for mart in MARTS}


def run_config_of(result: dg.SensorResult) -> dict:
    (request,) = result.run_requests
    return request.run_config["ops"]["mart_alerts"]["config"]


def test_the_first_evaluation_requests_everything_flagged_and_again_while_no_run_delivered_it(landed_env):
    now = flagged(landed_env)
    assert now[STUCK_ORDERS] and now[TREND_ANOMALIES]  # the simulator's data does produce alerts
    first = evaluate(landed_env.instance, None)
    config = run_config_of(first)
    assert config["new_stuck_order_ids"] == now[STUCK_ORDERS]
    assert config["new_trend_anomaly_keys"] == now[TREND_ANOMALIES]
    assert AlertCursor.parse(first.cursor).reported == {STUCK_ORDERS: [], TREND_ANOMALIES: []}  # not before delivery
    again = evaluate(landed_env.instance, first.cursor)  # the requested run never ran: nothing was delivered
    assert run_config_of(again) == config
    assert again.run_requests[0].run_key != first.run_requests[0].run_key


def test_only_flags_not_reported_before_are_new(landed_env):
    now = flagged(landed_env)
    reported = {STUCK_ORDERS: now[STUCK_ORDERS][1:], TREND_ANOMALIES: now[TREND_ANOMALIES]}
    result = evaluate(landed_env.instance, AlertCursor(seen={}, reported=reported).dump())
    config = run_config_of(result)
    assert config["new_stuck_order_ids"] == now[STUCK_ORDERS][:1]
    assert config["new_trend_anomaly_keys"] == []
    cursor = AlertCursor.parse(result.cursor)
    assert cursor.reported == reported and cursor.pending == {STUCK_ORDERS: now[STUCK_ORDERS][:1], TREND_ANOMALIES: []}


def test_a_refresh_with_nothing_new_moves_the_cursor_without_a_run(landed_env):
    result = evaluate(landed_env.instance, AlertCursor(seen={}, reported=flagged(landed_env)).dump())
    assert isinstance(result, dg.SensorResult) and not result.run_requests
    assert "nothing newly flagged" in result.skip_reason.skip_message


def use_webhook(monkeypatch, url: str | None) -> None:
    if url:
        monkeypatch.setenv(WEBHOOK_URL_ENV, url)
    else:
        monkeypatch.delenv(WEBHOOK_URL_ENV, raising=False)


def materialize_alerts(landed, monkeypatch, url: str | None, instance=None) -> dg.ExecuteInProcessResult:
    use_webhook(monkeypatch, url)
    result = evaluate(landed.instance, None)
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
    assert now[STUCK_ORDERS][0].split("/")[1] in metadata["alerts"]
    assert metadata["webhook"].startswith("delivered") and "attempt 2" in metadata["webhook"]
    body = receiver.bodies[-1]
    assert sorted(f"{row['account']}/{row['amazon_order_id']}" for row in body["new_stuck_orders"]) == now[STUCK_ORDERS]
    assert len(body["new_sku_trend_anomalies"]) == len(now[TREND_ANOMALIES])
    logs = "\n".join(entry.user_message for entry in instance.all_logs(result.run_id)) + json.dumps(metadata)
    assert "SECRET" not in logs and "s3cr3t" not in logs
    assert "new stuck orders" in logs and "stuck: " in logs


def test_without_a_webhook_the_alerts_are_still_in_logs_and_metadata(landed_env, monkeypatch):
    result = materialize_alerts(landed_env, monkeypatch, None)
    assert result.success
    assert "not configured" in alert_metadata(result)["webhook"]


# ----------------------------------------------------------------------------------------------- at least once


class Daemon:
    """What the sensor daemon does with mart_alerts_sensor: evaluate with the stored cursor, launch the runs it requests."""

    def __init__(self, instance: dg.DagsterInstance) -> None:
        self.instance = instance
        self.cursor: str | None = None
        self.job = defs.resolve_job_def("mart_alerts_job")

    def evaluate(self) -> list[dg.RunRequest]:
        result = evaluate(self.instance, self.cursor)
        if isinstance(result, dg.SensorResult):
            self.cursor = result.cursor if result.cursor is not None else self.cursor
            return list(result.run_requests or [])
        return []

    def launch(self, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
        return self.job.execute_in_process(run_config=request.run_config, tags=request.tags, instance=self.instance, raise_on_error=False)

    def tick(self) -> list[dg.ExecuteInProcessResult]:
        return [self.launch(request) for request in self.evaluate()]


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.ephemeral() as fresh:
        yield fresh


def publish(instance: dg.DagsterInstance, mart: str, path: Path) -> None:
    """A new version of `mart` at `path`, recorded as the analytics run records it (a materialization with `path`)."""
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=mart, metadata={"path": str(path)}))


def publish_landed(instance: dg.DagsterInstance, landed) -> None:
    for mart in MARTS:
        publish(instance, mart, mart_path(landed.root, mart))


def delivered_stuck_orders(receiver) -> list[str]:
    return sorted(f"{row['account']}/{row['amazon_order_id']}" for body in receiver.bodies for row in body["new_stuck_orders"])


def test_a_failed_delivery_fails_the_run_and_the_next_evaluation_sends_them_until_delivered(landed_env, monkeypatch, receiver_factory, instance):
    receiver = receiver_factory(*[500] * webhook.ATTEMPTS, 200)  # down for the whole first run, then up
    use_webhook(monkeypatch, receiver.url)
    publish_landed(instance, landed_env)
    now = flagged(landed_env)
    daemon = Daemon(instance)

    (failed,) = daemon.tick()
    assert not failed.success
    assert not failed.asset_materializations_for_node("mart_alerts")
    (failure,) = [event for event in failed.all_events if event.is_step_failure]
    message = failure.step_failure_data.error.message
    assert "NOT delivered" in message and "HTTP 500" in message and WEBHOOK_URL_ENV in message
    assert "SECRET" not in message and "s3cr3t" not in message
    assert len(receiver.bodies) == webhook.ATTEMPTS

    (delivered,) = daemon.tick()  # the marts did not refresh: the failed batch is sent again, in a new run key
    assert delivered.success and alert_metadata(delivered)["webhook"].startswith("delivered")
    assert delivered.dagster_run.tags[ALERT_BATCH_TAG] != failed.dagster_run.tags[ALERT_BATCH_TAG]
    assert delivered_stuck_orders(receiver) == sorted(now[STUCK_ORDERS] * (webhook.ATTEMPTS + 1))

    assert daemon.tick() == []  # delivered: nothing is sent again
    publish_landed(instance, landed_env)
    assert daemon.tick() == []  # nor after a refresh that flags nothing new
    assert len(receiver.bodies) == webhook.ATTEMPTS + 1
    assert AlertCursor.parse(daemon.cursor).reported == now


def test_a_run_still_in_flight_is_waited_for_and_a_canceled_one_is_requested_again(landed_env, monkeypatch, instance):
    use_webhook(monkeypatch, None)
    publish_landed(instance, landed_env)
    daemon = Daemon(instance)
    (request,) = daemon.evaluate()
    queued = instance.create_run_for_job(daemon.job, run_config=request.run_config, tags=request.tags)

    publish_landed(instance, landed_env)  # a refresh while the run waits in the queue
    result = evaluate(instance, daemon.cursor)
    assert isinstance(result, dg.SkipReason) and queued.run_id in result.skip_message

    instance.report_run_canceled(queued)
    (again,) = daemon.evaluate()
    assert again.run_key != request.run_key
    assert again.run_config == request.run_config


STUCK_SCHEMA = pa.schema(
    [
        ("account", pa.string()),
        ("amazon_order_id", pa.string()),
        ("order_status", pa.string()),
        ("status_since", pa.timestamp("us", tz="UTC")),
        ("hours_in_status", pa.float64()),
        ("reason", pa.string()),
        ("sales_channel", pa.string()),
        ("units_unshipped", pa.int64()),
    ]
)
ANOMALY_SCHEMA = pa.schema(
    [
        ("account", pa.string()),
        ("seller_sku", pa.string()),
        ("day", pa.date32()),
        ("direction", pa.string()),
        ("units_ordered", pa.int64()),
        ("trailing_mean", pa.float64()),
        ("score", pa.float64()),
    ]
)
SKUS = ("SKU-A", "SKU-B")


def write_stuck_orders(path: Path, order_ids: list[str], account: str = "default") -> Path:
    """A stuck_orders mart flagging `order_ids` of one account."""
    since = datetime(2024, 3, 1, tzinfo=timezone.utc)
    rows = [dict(account=account, amazon_order_id=order_id, order_status="Pending", status_since=since, hours_in_status=30.0,
                 reason="pending over 24 h", sales_channel="Amazon.com", units_unshipped=1) for order_id in order_ids]
    pq.write_table(pa.Table.from_pylist(rows, schema=STUCK_SCHEMA), path)
    return path


def write_trend_anomalies(path: Path, days: list[date], account: str = "default") -> Path:
    """A sku_trend_anomalies mart flagging a spike of each of SKUS on each of `days`, in one account."""
    rows = [dict(account=account, seller_sku=sku, day=day, direction="spike", units_ordered=40, trailing_mean=3.0, score=9.5) for day in days for sku in SKUS]
    pq.write_table(pa.Table.from_pylist(rows, schema=ANOMALY_SCHEMA), path)
    return path


def days_through(last: date, count: int) -> list[date]:
    return [last - timedelta(days=offset) for offset in range(count)]


def run_config_of_run(run: dg.ExecuteInProcessResult) -> dict:
    return run.dagster_run.run_config["ops"]["mart_alerts"]["config"]


def test_an_order_that_stops_being_stuck_and_is_stuck_again_is_reported_again(tmp_path, monkeypatch, instance):
    use_webhook(monkeypatch, None)
    daemon = Daemon(instance)
    anomalies = write_trend_anomalies(tmp_path / "anomalies.parquet", days_through(date(2024, 3, 21), 1))
    publish(instance, TREND_ANOMALIES, anomalies)
    rounds = []
    for stuck in (["A", "B"], ["B"], ["A", "B"]):
        publish(instance, STUCK_ORDERS, write_stuck_orders(tmp_path / f"stuck-{len(rounds)}.parquet", stuck))
        rounds.append([run_config_of_run(run)["new_stuck_order_ids"] for run in daemon.tick()])
    assert rounds == [[["default/A", "default/B"]], [], [["default/A"]]]


def test_the_cursor_stays_bounded_as_the_anomaly_history_grows(tmp_path, monkeypatch, instance):
    use_webhook(monkeypatch, None)
    daemon = Daemon(instance)
    publish(instance, STUCK_ORDERS, write_stuck_orders(tmp_path / "stuck.parquet", ["A"]))
    cursors = []
    for history_days in (30, 400):
        last = date(2024, 1, 1) + timedelta(days=history_days - 1)
        publish(instance, TREND_ANOMALIES, write_trend_anomalies(tmp_path / f"anomalies-{history_days}.parquet", days_through(last, history_days)))
        (run,) = daemon.tick()
        assert run.success
        assert daemon.evaluate() == []  # settles the delivered batch into the cursor
        recent = sorted(f"default/{sku}@{day.isoformat()}" for day in days_through(last, ANOMALY_HORIZON_DAYS) for sku in SKUS)
        assert AlertCursor.parse(daemon.cursor).reported == {STUCK_ORDERS: ["default/A"], TREND_ANOMALIES: recent}
        cursors.append(daemon.cursor)
    assert len(cursors[1]) <= len(cursors[0]) + 10  # the same keys' worth of text, whatever the history


def test_alerts_of_two_accounts_are_told_apart_and_each_account_has_its_own_anomaly_horizon(tmp_path):
    stuck = tmp_path / "stuck.parquet"
    tables = [pq.read_table(write_stuck_orders(tmp_path / f"{account}.parquet", ["A"], account)) for account in ("a", "b")]
    pq.write_table(pa.concat_tables(tables), stuck)
    anomalies = tmp_path / "anomalies.parquet"
    recent, lagging = days_through(date(2024, 3, 21), 10), days_through(date(2024, 2, 10), 10)
    pq.write_table(pa.concat_tables([pq.read_table(write_trend_anomalies(tmp_path / "a-anomalies.parquet", recent, "a")),
                                     pq.read_table(write_trend_anomalies(tmp_path / "b-anomalies.parquet", lagging, "b"))]),
                   anomalies)
    paths = {STUCK_ORDERS: stuck, TREND_ANOMALIES: anomalies}
    keys = {mart: sorted(alertable(mart, flagged_rows(mart, paths[mart]))) for mart in MARTS}
    assert keys[STUCK_ORDERS] == ["a/A", "b/A"]  # one order id, two accounts: two alerts
    # b's data stops on 02-10: its latest week is still news, not hidden behind a's newer days
    assert keys[TREND_ANOMALIES] == sorted(f"{account}/{sku}@{day}" for account, days in (("a", recent), ("b", lagging))
                                           for day in days[:ANOMALY_HORIZON_DAYS] for sku in SKUS)
    batch = new_alerts(paths, keys)
    assert [row["account"] for row in batch.payload()["new_stuck_orders"]] == ["a", "b"]
    assert batch.summary().endswith("(accounts a, b)")
    assert all(line.split(": ")[1] in ("account a", "account b") for line in batch.lines())
    assert "| account |" in batch.markdown()
