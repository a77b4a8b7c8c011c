"""The MWS client against the simulator over real HTTP on loopback (no mocking of requests)."""

from __future__ import annotations

import logging
import socket
import time
from datetime import datetime, timedelta, timezone

import pytest

from orders_pipeline.sources.mws.client import MwsOrdersClient
from orders_pipeline.sources.call_stats import CallStats
from orders_pipeline.sources.mws.settings import MwsCredentials
from orders_pipeline.sources.times import format_utc
from orders_pipeline.sources.mws.error_response import error_from_response
from orders_pipeline.sources.mws.errors import (
    MwsAuthError,
    MwsConfigurationError,
    MwsConnectionError,
    MwsNextTokenError,
    MwsRequestError,
    MwsServerError,
    MwsThrottledError,
)

MARKETS = ["ATVPDKIKX0DER"]
CREDS = MwsCredentials("AKIDTEST", "super-secret-value-123", "A1SELLER", "amzn.mws.token-xyz")


# -- errors (pure) ---------------------------------------------------------------------------------

SIG_BODY = b"""<?xml version="1.0"?>
<ErrorResponse xmlns="https://mws.amazonservices.com/Orders/2013-09-01">
  <Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code>
  <Message>The request signature we calculated does not match the signature you provided.</Message></Error>
  <RequestID>4331f1ec-1111-2222-3333-444455556666</RequestID>
</ErrorResponse>"""


def test_error_from_response_auth_names_code_request_id_and_fix():
    err = error_from_response(403, SIG_BODY, "ListOrders")
    assert isinstance(err, MwsAuthError)
    assert (err.code, err.request_id, err.http_status, err.operation) == (
        "SignatureDoesNotMatch", "4331f1ec-1111-2222-3333-444455556666", 403, "ListOrders",
    )
    text = str(err)
    assert text.startswith("ListOrders failed: SignatureDoesNotMatch (RequestId 4331f1ec-")
    assert text.endswith("-> check MWS_SECRET_KEY") and "\n" not in text


@pytest.mark.parametrize(
    ("status", "code", "cls", "hint"),
    [
        (403, "InvalidAccessKeyId", MwsAuthError, "MWS_ACCESS_KEY_ID"),
        (403, "InvalidClientTokenId", MwsAuthError, "MWS_ACCESS_KEY_ID"),
        (401, "AccessDenied", MwsAuthError, "MWS_SELLER_ID / MWS_AUTH_TOKEN"),
        (503, "RequestThrottled", MwsThrottledError, ""),
        (503, "QuotaExceeded", MwsThrottledError, ""),
        (500, "InternalError", MwsServerError, ""),
        (503, "ServiceUnavailable", MwsServerError, ""),
        (400, "NextTokenCorrupted", MwsNextTokenError, ""),
        (400, "InvalidParameterValue", MwsRequestError, ""),
    ],
)
def test_error_classification(status, code, cls, hint):
    body = (
        f'<ErrorResponse xmlns="com.amazonservices.mws.orders._2013_09_01"><Error><Type>Sender</Type>'
        f"<Code>{code}</Code><Message>msg</Message></Error><RequestId>rid-1</RequestId></ErrorResponse>"
    ).encode()
    err = error_from_response(status, body, "ListOrderItems")
    assert type(err) is cls and err.code == code and err.request_id == "rid-1"
    assert hint in str(err)


def test_error_marketplace_message_points_at_env_var():
    body = (
        b"<ErrorResponse><Error><Code>InvalidParameterValue</Code>"
        b"<Message>Invalid marketplace id: XX</Message></Error></ErrorResponse>"
    )
    err = error_from_response(400, body, "ListOrders", request_id="hdr-rid")
    assert isinstance(err, MwsRequestError) and "MWS_MARKETPLACE_IDS" in str(err)
    assert err.request_id == "hdr-rid"  # from the header when the body has none


@pytest.mark.parametrize("body", [b"", b"<html><body>502 Bad Gateway</body></html>", b"not xml at all <"])
def test_error_from_non_xml_body_is_still_clear(body):
    err = error_from_response(503, body, "ListOrders")
    assert isinstance(err, MwsServerError) and "ListOrders failed" in str(err)
    err = error_from_response(404, body, "ListOrders")
    assert isinstance(err, MwsRequestError) and err.http_status == 404


def test_hostile_error_body_is_not_expanded():
    body = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><ErrorResponse><Error><Code>&a;</Code></Error></ErrorResponse>'
    err = error_from_response(400, body, "ListOrders")
    assert "aaaa" not in str(err)


# -- configuration (no network) --------------------------------------------------------------------

@pytest.mark.parametrize(
    "endpoint",
    ["http://mws.amazonservices.com", "http://10.0.0.5:8123", "http://127.0.0.1.evil.com", "ftp://127.0.0.1", "", "mws.amazonservices.com"],
)
def test_bad_endpoints_are_refused(endpoint):
    with pytest.raises(MwsConfigurationError, match="MWS_ENDPOINT"):
        MwsOrdersClient(endpoint, CREDS, MARKETS)


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:8123", "http://localhost:1", "http://[::1]:8123", "https://mws.amazonservices.com/"])
def test_good_endpoints(endpoint):
    client = MwsOrdersClient(endpoint, CREDS, MARKETS)
    assert client.endpoint_url.endswith("/Orders/2013-09-01") and "//Orders" not in client.endpoint_url


def test_user_info_in_endpoint_refused_without_echoing_it():
    with pytest.raises(MwsConfigurationError) as info:
        MwsOrdersClient("https://user:pw-secret@mws.amazonservices.com", CREDS, MARKETS)
    assert "pw-secret" not in str(info.value)


@pytest.mark.parametrize(
    ("creds", "env"),
    [
        (MwsCredentials("", "s", "x"), "MWS_ACCESS_KEY_ID"),
        (MwsCredentials("a", " ", "x"), "MWS_SECRET_KEY"),
        (MwsCredentials("a", "s", ""), "MWS_SELLER_ID"),
    ],
)
def test_missing_credentials_name_env_var(creds, env):
    with pytest.raises(MwsConfigurationError, match=env):
        MwsOrdersClient("https://mws.amazonservices.com", creds, MARKETS)


def test_marketplace_count_validated():
    with pytest.raises(MwsConfigurationError, match="MWS_MARKETPLACE_IDS"):
        MwsOrdersClient("https://mws.amazonservices.com", CREDS, [])
    with pytest.raises(MwsConfigurationError, match="MWS_MARKETPLACE_IDS"):
        MwsOrdersClient("https://mws.amazonservices.com", CREDS, [f"M{i}" for i in range(51)])
    client = MwsOrdersClient("https://mws.amazonservices.com", CREDS, "A, B,A")
    assert client.marketplace_ids == ("A", "B")


def test_tls_verification_cannot_be_disabled():
    import requests

    session = requests.Session()
    session.verify = False
    with pytest.raises(MwsConfigurationError, match="verif"):
        MwsOrdersClient("https://mws.amazonservices.com", CREDS, MARKETS, session=session)


def test_reprs_hold_no_secrets():
    client = MwsOrdersClient("https://mws.amazonservices.com", CREDS, MARKETS)
    for text in (repr(CREDS), repr(client), str(CREDS)):
        for secret in (CREDS.secret_key, CREDS.auth_token, CREDS.access_key_id):
            assert secret not in text


def test_datetime_format():
    d = datetime(2024, 3, 3, tzinfo=timezone.utc)
    assert format_utc(d) == "2024-03-03T00:00:00Z"
    assert format_utc(d.replace(microsecond=123999)) == "2024-03-03T00:00:00.123Z"


def test_call_stats_metadata():
    stats = CallStats(calls={"ListOrders": 2, "ListOrderItems": 3}, retries=1, throttle_wait_seconds=1.23456)
    meta = stats.as_metadata()
    assert meta["calls_total"] == 5 and meta["calls_ListOrders"] == 2 and meta["throttle_wait_seconds"] == 1.235
    assert all(isinstance(v, (int, float)) for v in meta.values())


def test_unreachable_endpoint_fails_quickly_with_clear_message():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block exits: nothing listens there
    client = MwsOrdersClient(
        f"http://127.0.0.1:{port}", CREDS, MARKETS, max_retries=2, backoff_base=0.01, timeout=2
    )
    started = time.monotonic()
    with pytest.raises(MwsConnectionError) as info:
        client.get_service_status()
    assert time.monotonic() - started < 3
    text = str(info.value)
    assert f"127.0.0.1:{port}" in text and "MWS_ENDPOINT" in text and "Connection refused" in text
    for secret in (CREDS.secret_key, CREDS.auth_token, CREDS.access_key_id):
        assert secret not in text
    assert client.stats.connection_errors == 3 and client.stats.calls == {"GetServiceStatus": 3}


# -- against the simulator over real HTTP ----------------------------------------------------------

from orders_pipeline.simulator import (  # noqa: E402
    DEMO_CREDENTIALS,
    DEMO_MARKETPLACE_IDS,
    Faults,
    MwsSimulator,
    SimulatorConfig,
)

SIM_CREDS = MwsCredentials(
    DEMO_CREDENTIALS.access_key_id, DEMO_CREDENTIALS.secret_key, DEMO_CREDENTIALS.seller_id, DEMO_CREDENTIALS.auth_token
)
DAY = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=3)
NEXT_DAY = DAY + timedelta(days=1)
SECRETS = [s for s in (SIM_CREDS.secret_key, SIM_CREDS.access_key_id, SIM_CREDS.auth_token) if s]


def sim_client(sim: MwsSimulator, **kw) -> MwsOrdersClient:
    kw.setdefault("backoff_base", 0.01)
    kw.setdefault("backoff_max", 0.05)
    return MwsOrdersClient(sim.url, kw.pop("credentials", SIM_CREDS), kw.pop("markets", DEMO_MARKETPLACE_IDS), **kw)


def fetch_ids(client: MwsOrdersClient, after=DAY, before=NEXT_DAY) -> list[str]:
    ids: list[str] = []
    for page in client.list_orders(after, before):
        assert page.last_updated_before is not None
        ids += page.table.column("amazon_order_id").to_pylist()
    return ids


def expected_ids(sim: MwsSimulator, after=DAY, before=NEXT_DAY) -> set[str]:
    return {o["amazon_order_id"] for o in sim.expected_orders(after, before)}


def test_list_orders_follows_every_page_to_every_expected_order():
    with MwsSimulator(SimulatorConfig(time_scale=600, orders_per_day=260)) as sim:
        client = sim_client(sim)
        ids = fetch_ids(client)
        expected = expected_ids(sim)
        assert len(expected) > 200
        assert set(ids) == expected and len(ids) == len(expected)
        assert sim.stats.requests_by_action["ListOrders"] == 1
        assert sim.stats.requests_by_action["ListOrdersByNextToken"] >= 2
        assert client.last_covered_until == NEXT_DAY
        assert client.stats.calls == sim.stats.requests_by_action
        assert sim.stats.throttled == 0


def test_order_items_follow_next_token_pages():
    with MwsSimulator(SimulatorConfig(time_scale=600, orders_per_day=20, order_items_page_size=1)) as sim:
        client = sim_client(sim)
        truth = {o["amazon_order_id"]: o for o in sim.expected_orders(DAY, NEXT_DAY)}
        multi = 0
        for order_id, order in truth.items():
            got = []
            for page in client.list_order_items(order_id):
                assert page.amazon_order_id == order_id
                got += page.table.column("order_item_id").to_pylist()
            assert sorted(got) == sorted(i["order_item_id"] for i in order["items"])
            multi += len(order["items"]) > 1
        assert multi > 0
        assert sim.stats.requests_by_action["ListOrderItemsByNextToken"] >= multi
        assert sim.stats.throttled == 0


def test_server_shortened_windows_still_cover_the_day():
    with MwsSimulator(SimulatorConfig(time_scale=600, orders_per_day=150, faults=Faults(truncate_window_hours=5))) as sim:
        client = sim_client(sim)
        bounds = []
        ids = []
        for page in client.list_orders(DAY, NEXT_DAY):
            bounds.append(page.last_updated_before)
            ids += page.table.column("amazon_order_id").to_pylist()
        assert set(ids) == expected_ids(sim)
        assert sim.stats.requests_by_action["ListOrders"] == 5  # 0-5h, 5-10h, 10-15h, 15-20h, 20-24h
        assert bounds[0] == DAY + timedelta(hours=5) and bounds[-1] == NEXT_DAY
        assert bounds == sorted(bounds)
        assert client.last_covered_until == NEXT_DAY


def test_server_errors_and_resets_are_retried_with_the_same_token():
    # request 1 = ListOrders; 2.. = ListOrdersByNextToken: resets, a 503 and periodic 500/503 hit token pages.
    # All four faults land within the first two pages, so they hit on any day's data (a day has 3+ pages).
    faults = Faults(server_error_every=5, reset_request_numbers=frozenset({2, 4}), fail_request_numbers=frozenset({3}))
    with MwsSimulator(SimulatorConfig(time_scale=600, orders_per_day=300, faults=faults)) as sim:
        client = sim_client(sim)
        ids = fetch_ids(client)
        expected = expected_ids(sim)
        assert len(ids) == len(expected) and set(ids) == expected  # nothing lost, nothing repeated
        assert sim.stats.requests_by_action["ListOrders"] == 1  # never restarted: the failed token was re-sent
        assert client.stats.connection_errors == 2 and client.stats.server_errors >= 2
        assert client.stats.retries == client.stats.connection_errors + client.stats.server_errors
        assert sim.stats.faults_injected == client.stats.retries


def test_timeout_is_retried():
    faults = Faults(slow_request_numbers=frozenset({1}), slow_seconds=1.0)
    with MwsSimulator(SimulatorConfig(time_scale=600, faults=faults)) as sim:
        client = sim_client(sim, timeout=0.3)
        assert client.get_service_status() in {"GREEN", "GREEN_I", "YELLOW", "RED"}
        assert client.stats.connection_errors == 1 and client.stats.retries == 1


def test_persistent_server_errors_give_up_with_typed_error():
    with MwsSimulator(SimulatorConfig(time_scale=600, faults=Faults(server_error_every=1))) as sim:
        client = sim_client(sim, max_retries=2)
        with pytest.raises(MwsServerError) as info:
            client.get_service_status()
        assert sim.stats.total_requests == 3
        assert info.value.request_id and info.value.request_id in str(info.value)


def test_pacing_spends_tokens_as_they_restore_without_being_throttled():
    # time_scale 10: ListOrderItems restores one token every 200 ms after a burst of 30. The client starts
    # from the documented model (one per 2 s) and must learn the faster rate from the quota headers.
    with MwsSimulator(SimulatorConfig(time_scale=10, orders_per_day=80)) as sim:
        client = sim_client(sim)
        order_id = next(iter(expected_ids(sim)))
        started = time.monotonic()
        for _ in range(45):
            list(client.list_order_items(order_id))
        elapsed = time.monotonic() - started
        calls = sum(sim.stats.requests_by_action.values())
        assert sim.stats.throttled == 0 and client.stats.throttled_responses == 0
        bound = (calls - 30) * 2.0 / 10
        assert elapsed >= bound * 0.97  # no call beyond what the bucket could pay
        assert client.stats.throttle_wait_seconds > 0
        assert elapsed <= bound * 1.05 + 0.05 * calls  # paced at the restore rate (+ per-call latency), not slower


def test_external_throttling_is_absorbed():
    faults = Faults(external_throttle=True)
    with MwsSimulator(SimulatorConfig(time_scale=600, orders_per_day=60, seed=11, faults=faults)) as sim:
        client = sim_client(sim)
        truth = sim.expected_orders(DAY, NEXT_DAY)
        for order in truth:
            got = [i for p in client.list_order_items(order["amazon_order_id"]) for i in p.table.column("order_item_id").to_pylist()]
            assert sorted(got) == sorted(i["order_item_id"] for i in order["items"])
        assert sim.stats.throttled > 0  # someone else drained the bucket now and then
        assert client.stats.throttled_responses == sim.stats.throttled


def test_wrong_secret_is_a_clear_auth_error_without_the_secret():
    bad = MwsCredentials(SIM_CREDS.access_key_id, "wrong-secret-value-987", SIM_CREDS.seller_id, SIM_CREDS.auth_token)
    with MwsSimulator(SimulatorConfig(time_scale=600)) as sim:
        client = sim_client(sim, credentials=bad)
        with pytest.raises(MwsAuthError) as info:
            list(client.list_orders(DAY, NEXT_DAY))
        text = str(info.value)
        assert "SignatureDoesNotMatch" in text and "MWS_SECRET_KEY" in text and "RequestId" in text
        assert info.value.http_status == 403 and sim.stats.total_requests == 1  # not retried
        for secret in ("wrong-secret-value-987", *SECRETS):
            assert secret not in text and secret not in repr(info.value)


@pytest.mark.parametrize(
    ("field", "value", "code", "hint"),
    [
        ("access_key_id", "AKIDWRONG", "InvalidAccessKeyId", "MWS_ACCESS_KEY_ID"),
        ("seller_id", "A0WRONGSELLER", "AccessDenied", "MWS_SELLER_ID"),
    ],
)
def test_wrong_identity_names_the_variable(field, value, code, hint):
    from dataclasses import replace

    with MwsSimulator(SimulatorConfig(time_scale=600)) as sim:
        client = sim_client(sim, credentials=replace(SIM_CREDS, **{field: value}))
        with pytest.raises(MwsAuthError) as info:
            client.get_service_status()
        assert info.value.code == code and hint in str(info.value)


def test_unknown_marketplace_is_a_request_error():
    with MwsSimulator(SimulatorConfig(time_scale=600)) as sim:
        client = sim_client(sim, markets=["A1UNKNOWNMKT"])
        with pytest.raises(MwsRequestError) as info:
            list(client.list_orders(DAY, NEXT_DAY))
        assert "MWS_MARKETPLACE_IDS" in str(info.value) and info.value.http_status == 400
        assert sim.stats.total_requests == 1


def test_two_minute_rule_clamps_and_empty_window_sends_nothing():
    now = datetime.now(timezone.utc).replace(microsecond=0)
    with MwsSimulator(SimulatorConfig(time_scale=600)) as sim:
        client = sim_client(sim, now=lambda: now)
        assert list(client.list_orders(now - timedelta(minutes=1), now + timedelta(hours=1))) == []
        assert sim.stats.total_requests == 0 and client.last_covered_until is None
        ids = fetch_ids(client, now - timedelta(hours=2), now + timedelta(hours=1))
        assert client.last_covered_until == now - timedelta(minutes=2)
        assert set(ids) == expected_ids(sim, now - timedelta(hours=2), now - timedelta(minutes=2))


def test_get_order_and_service_status():
    with MwsSimulator(SimulatorConfig(time_scale=600, orders_per_day=30)) as sim:
        client = sim_client(sim)
        assert client.get_service_status() == "GREEN"
        wanted = sorted(expected_ids(sim))[:3]
        page = client.get_orders(wanted)
        assert sorted(page.table.column("amazon_order_id").to_pylist()) == wanted
        with pytest.raises(ValueError):
            client.get_orders([f"id-{i}" for i in range(51)])


def test_logs_carry_no_secrets(caplog):
    caplog.set_level(logging.DEBUG, logger="orders_pipeline.sources.mws")
    faults = Faults(fail_request_numbers=frozenset({2}))
    with MwsSimulator(SimulatorConfig(time_scale=600, orders_per_day=150, faults=faults)) as sim:
        client = sim_client(sim)
        fetch_ids(client)
    assert any("ListOrders" in r.getMessage() for r in caplog.records)
    for record in caplog.records:
        text = record.getMessage()
        for secret in SECRETS:
            assert secret not in text


def test_echoed_credentials_are_redacted_from_errors():
    body = (
        b"<ErrorResponse><Error><Code>InvalidParameterValue</Code>"
        b"<Message>bad key AKIDTEST with secret super-secret-value-123</Message></Error></ErrorResponse>"
    )
    err = error_from_response(400, body, "ListOrders", redact=[CREDS.access_key_id, CREDS.secret_key])
    assert CREDS.access_key_id not in str(err) and CREDS.secret_key not in str(err) and "***" in str(err)


def test_loopback_endpoint_ignores_proxy_environment(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # a proxy that does not exist
    monkeypatch.setenv("NO_PROXY", "")
    with MwsSimulator(SimulatorConfig(time_scale=600)) as sim:
        assert sim_client(sim, max_retries=0).get_service_status() == "GREEN"
