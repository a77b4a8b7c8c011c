"""Bad input gets one clear message and no Parquet; hostile XML is refused; secrets and personal data never land."""

from __future__ import annotations

import hashlib
import shutil
import socket
import subprocess
import sys
from datetime import date
from pathlib import Path
from urllib.parse import quote

import pyarrow.parquet as pq
import pytest
import requests

from orders_pipeline.sources.mws.client import MwsOrdersClient
from orders_pipeline.sources.mws.settings import MwsCredentials
from orders_pipeline.sources.mws.errors import MwsConfigurationError
from orders_pipeline.simulator import Credentials, Faults, MwsSimulator, SimulatorConfig
from orders_pipeline.storage.layout import partition_dir

from .conftest import FAST, day_bounds, read_partition, resource_for
from .reliability_support import REPO, CannedServer, TunedMws, clean_env, failure_message, materialize, materialization_metadata

DAY = date(2024, 3, 3)
EARLIER = date(2024, 3, 2)
NS = "https://mws.amazonservices.com/Orders/2013-09-01"


@pytest.fixture(scope="module")
def earlier_partition(tmp_path_factory) -> Path:
    """A committed earlier day, written once and copied into each test's data dir."""
    root = tmp_path_factory.mktemp("earlier")
    import os

    os.environ["ORDERS_DATA_DIR"] = str(root)
    try:
        with MwsSimulator(SimulatorConfig(time_scale=FAST, orders_per_day=30)) as sim:
            assert materialize(resource_for(sim), EARLIER).success
    finally:
        del os.environ["ORDERS_DATA_DIR"]
    return root


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _orders_body(inner: str) -> bytes:
    return (
        f'<?xml version="1.0"?><ListOrdersResponse xmlns="{NS}"><ListOrdersResult>'
        f"<LastUpdatedBefore>2024-03-04T00:00:00Z</LastUpdatedBefore>{inner}</ListOrdersResult>"
        "<ResponseMetadata><RequestId>rid-1</RequestId></ResponseMetadata></ListOrdersResponse>"
    ).encode()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


_VALID = _orders_body(
    "<Orders><Order><AmazonOrderId>111-1</AmazonOrderId><PurchaseDate>2024-03-03T01:00:00Z</PurchaseDate>"
    "<LastUpdateDate>2024-03-03T02:00:00Z</LastUpdateDate><OrderStatus>Pending</OrderStatus></Order></Orders>"
)
CANNED = {  # case: (status, body, words the message must contain)
    "not xml": (200, b"<html><body>502 Bad Gateway from a proxy</body></html>", ["unusable body", "ListOrders"]),
    "truncated xml": (200, _VALID[: len(_VALID) // 2], ["not well-formed", "ListOrders"]),
    "missing Orders element": (200, _orders_body(""), ["no <Orders>", "ListOrders"]),
    "order without AmazonOrderId": (200, _orders_body("<Orders><Order><LastUpdateDate>2024-03-03T02:00:00Z</LastUpdateDate></Order></Orders>"), ["AmazonOrderId"]),
    "html error page": (404, b"<html>Not Found</html>", ["HTTP 404", "MWS_ENDPOINT"]),
}


@pytest.mark.parametrize("case", sorted(CANNED))
def test_an_unusable_body_fails_the_day_clearly_and_writes_nothing(case, data_root, earlier_partition):
    shutil.copytree(earlier_partition, data_root)
    before = _snapshot(data_root)
    status, body, words = CANNED[case]
    with CannedServer(body, status) as server:
        resource = TunedMws(
            endpoint=server.url, access_key_id="AKID", secret_key="s3cr3t-canned", seller_id="A1", marketplace_ids="ATVPDKIKX0DER",
            backoff_base=0.01,
        )
        result = materialize(resource, DAY)
    assert not result.success
    message = failure_message(result)
    assert message.startswith(f"Partition {DAY} not written") and "\n" not in message
    for word in words:
        assert word in message, message
    assert "s3cr3t-canned" not in message
    assert not partition_dir(data_root, "orders", DAY).exists() and not partition_dir(data_root, "order_items", DAY).exists()
    assert _snapshot(data_root) == before


BAD_SETTINGS = {  # case: (resource overrides, words the message must contain)
    "wrong secret": ({"secret_key": "wrong-secret-x1"}, ["SignatureDoesNotMatch", "MWS_SECRET_KEY", "RequestId"]),
    "wrong access key": ({"access_key_id": "AKIDWRONG"}, ["InvalidAccessKeyId", "MWS_ACCESS_KEY_ID"]),
    "wrong seller": ({"seller_id": "A0WRONG"}, ["AccessDenied", "MWS_SELLER_ID"]),
    "missing secret": ({"secret_key": None}, ["MWS_SECRET_KEY"]),
    "unknown marketplace": ({"marketplace_ids": "A1VC38T7YXB528"}, ["InvalidParameterValue", "A1VC38T7YXB528", "MWS_MARKETPLACE_IDS"]),
    "no marketplace": ({"marketplace_ids": None}, ["MWS_MARKETPLACE_IDS"]),
    "plain http to a remote host": ({"endpoint": "http://mws.example.com"}, ["plain http", "https"]),
}


@pytest.mark.parametrize("case", sorted(BAD_SETTINGS))
def test_bad_settings_fail_with_one_message_naming_the_fix(case, data_root, earlier_partition, simulator):
    shutil.copytree(earlier_partition, data_root)
    before = _snapshot(data_root)
    overrides, words = BAD_SETTINGS[case]
    settings = {**resource_for(simulator).__dict__, **overrides}
    result = materialize(TunedMws(**settings, backoff_base=0.01), DAY)
    assert not result.success
    message = failure_message(result)
    assert "\n" not in message and "Traceback" not in message
    for word in words:
        assert word in message, message
    assert "wrong-secret-x1" not in message
    assert _snapshot(data_root) == before


def test_messy_values_are_kept_flagged_counted_and_warned_about(data_root):
    config = SimulatorConfig(time_scale=FAST, orders_per_day=400, faults=Faults(messy_values=True))
    with MwsSimulator(config) as sim:
        result = materialize(resource_for(sim), DAY)
        truth = {o["amazon_order_id"]: o for o in sim.expected_orders(*day_bounds(DAY))}
    assert result.success
    rows = read_partition(data_root, "orders", DAY)
    assert sorted(r["amazon_order_id"] for r in rows) == sorted(truth)  # no order dropped
    flagged = [r for r in rows if r["is_quarantined"]]
    assert flagged, "the simulator serves an undecodable five-digit-year PurchaseDate on some orders each messy day"
    assert all(r["purchase_date"] is None and "purchase_date" in r["quarantined_fields"] for r in flagged)
    for row in rows:
        if not row["is_quarantined"]:  # percent-encoded and space-padded values were decoded
            assert row["purchase_date"] == truth[row["amazon_order_id"]]["purchase_date"]
            assert row["latest_ship_date"] == truth[row["amazon_order_id"]]["latest_ship_date"]
            assert row["shipment_service_level_category"] == row["shipment_service_level_category"].strip()
    assert materialization_metadata(result)["orders"]["quarantined_values"] == len(flagged)
    check = next(c for c in result.get_asset_check_evaluations() if c.check_name == "no_quarantined_values")
    assert check.passed is False and check.severity.value == "WARN"  # warns, never fails the run


# -- hostile XML through the client and the asset ------------------------------------------------


def _hostile_bodies(secret_file: Path, canary_url: str) -> dict[str, bytes]:
    return {
        "external entity (file)": (
            f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file://{secret_file}">]>'.encode()
            + _orders_body("<Orders><Order><AmazonOrderId>&x;</AmazonOrderId></Order></Orders>").split(b"?>", 1)[1]
        ),
        "external entity (network)": (
            f'<?xml version="1.0"?><!DOCTYPE r SYSTEM "{canary_url}/dtd"><r>&x;</r>'.encode()
        ),
        "parameter entity": f'<!DOCTYPE r [<!ENTITY % p SYSTEM "{canary_url}/p"> %p;]><r/>'.encode(),
        "entity bomb": (
            b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            + b"".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">'.encode() for i in range(1, 10))
            + b"]><r>&lol9;</r>"
        ),
        "deep nesting": _orders_body("<a>" * 5000 + "</a>" * 5000),
    }


def test_hostile_xml_is_refused_without_reading_files_or_the_network(data_root, tmp_path):
    secret_file = tmp_path / "host-secret.txt"
    secret_file.write_text("TOP-SECRET-HOST-FILE")
    with CannedServer(b"<x/>") as canary:
        for case, body in _hostile_bodies(secret_file, canary.url).items():
            with CannedServer(body) as server:
                resource = TunedMws(endpoint=server.url, access_key_id="AKID", secret_key="k", seller_id="A1", marketplace_ids="M1", backoff_base=0.01)
                result = materialize(resource, DAY)
            assert not result.success, case
            message = failure_message(result)
            assert "TOP-SECRET-HOST-FILE" not in message and "ListOrders" in message, (case, message)
            assert ("DTD" in message or "not well-formed" in message or "no <" in message), (case, message)
        assert canary.requests == 0  # no DTD or entity was fetched
    assert not (data_root / "orders").exists()


def test_a_huge_or_endless_body_is_cut_off_not_buffered():
    """The server would send 1 GiB; the client stops reading past the 64 MiB limit (before: read it all)."""
    chunk = b"<a>" + b"x" * (1 << 20) + b"</a>"

    def endless():
        yield b'<?xml version="1.0"?><ListOrdersResponse>'
        for _ in range(1024):
            yield chunk

    with CannedServer(endless) as server:
        client = MwsOrdersClient(server.url, MwsCredentials("AKID", "k", "A1"), ["M1"], backoff_base=0.01)
        with pytest.raises(Exception) as info:
            list(client.list_orders(__import__("datetime").datetime(2024, 3, 3), __import__("datetime").datetime(2024, 3, 4)))
    assert "larger than" in str(info.value) and "refused" in str(info.value)
    assert server.bytes_sent < 200 * (1 << 20)
    assert server.requests == 1  # not retried


# -- transport -------------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["http://mws.amazonservices.com", "http://10.0.0.5:8123", "http://127.0.0.1.example.com"])
def test_plain_http_is_refused_off_loopback(endpoint):
    with pytest.raises(MwsConfigurationError, match="plain http"):
        MwsOrdersClient(endpoint, MwsCredentials("AKID", "k", "A1"), ["M1"])


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:9", "http://localhost:9", "http://[::1]:9", "https://mws.amazonservices.com"])
def test_https_anywhere_and_http_on_loopback_are_accepted(endpoint):
    client = MwsOrdersClient(endpoint, MwsCredentials("AKID", "k", "A1"), ["M1"])
    assert client.endpoint_url == endpoint + "/Orders/2013-09-01"


def test_tls_verification_cannot_be_switched_off(monkeypatch):
    session = requests.Session()
    session.verify = False
    with pytest.raises(MwsConfigurationError, match="verif"):
        MwsOrdersClient("https://mws.amazonservices.com", MwsCredentials("AKID", "k", "A1"), ["M1"], session=session)
    # the environment cannot switch it off either: requests keeps verify=True when the CA variables are empty
    monkeypatch.setenv("CURL_CA_BUNDLE", "")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "")
    client = MwsOrdersClient("https://mws.amazonservices.com", MwsCredentials("AKID", "k", "A1"), ["M1"])
    settings = client._session.merge_environment_settings("https://mws.amazonservices.com", {}, None, None, None)
    assert settings["verify"] is True


# -- secrets and personal data ---------------------------------------------------------------------

SECRETS = {
    "MWS_ACCESS_KEY_ID": "AKIDUNIQUEACCESS7Q3Z",
    "MWS_SECRET_KEY": "uNiQ/ue+Secret=Key/42xYz",
    "MWS_AUTH_TOKEN": "amzn.mws.4ea38b7b-f563-7709-4bae-87aeaUNIQUE",
}


def _forms(value: str) -> set[str]:
    return {value, quote(value, safe=""), quote(value, safe="-_.~"), value.replace("/", "%2F"), quote(quote(value, safe=""), safe="")}


def _leaks(root: Path, forms: set[str]) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        blobs = [path.read_bytes()]
        if path.suffix == ".parquet":
            blobs.append(str(pq.read_table(path).to_pylist()).encode())
            blobs.append(str(pq.read_metadata(path).metadata).encode())
        if path.suffix == ".duckdb":
            import duckdb

            with duckdb.connect(str(path), read_only=True) as con:
                for (name,) in con.execute("select table_name from information_schema.tables").fetchall():
                    blobs.append(str(con.execute(f'select * from "{name}"').fetchall()).encode())
        for form in forms:
            if any(form.encode() in blob for blob in blobs):
                found.append(f"{path}: {form}")
    return found


def _cli(home: Path, data: Path, endpoint: str, secret: str) -> subprocess.CompletedProcess:
    env = clean_env(
        DAGSTER_HOME=str(home), ORDERS_DATA_DIR=str(data), MWS_ENDPOINT=endpoint, MWS_SELLER_ID="A1UNIQUESELLER",
        MWS_MARKETPLACE_IDS="ATVPDKIKX0DER", MWS_ACCESS_KEY_ID=SECRETS["MWS_ACCESS_KEY_ID"], MWS_SECRET_KEY=secret,
        MWS_AUTH_TOKEN=SECRETS["MWS_AUTH_TOKEN"],
    )
    command = [str(Path(sys.executable).with_name("dagster")), *f"asset materialize -m orders_pipeline.definitions --select orders,order_items --partition {DAY}".split()]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_secrets_never_land_in_output_logs_run_storage_parquet_or_duckdb(tmp_path):
    home, data = tmp_path / "home", tmp_path / "data"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    credentials = Credentials(SECRETS["MWS_ACCESS_KEY_ID"], SECRETS["MWS_SECRET_KEY"], "A1UNIQUESELLER", SECRETS["MWS_AUTH_TOKEN"])
    config = SimulatorConfig(time_scale=FAST, orders_per_day=30, credentials=credentials, marketplace_ids=("ATVPDKIKX0DER",), faults=Faults(fail_request_numbers=frozenset({2})))
    with MwsSimulator(config) as sim:
        good = _cli(home, data, sim.url, SECRETS["MWS_SECRET_KEY"])
        assert good.returncode == 0, good.stderr[-3000:]
        bad = _cli(home, tmp_path / "bad-data", sim.url, "wrong+Secret/UNIQUE=99")
        assert bad.returncode != 0 and "SignatureDoesNotMatch" in bad.stderr and "MWS_SECRET_KEY" in bad.stderr
    assert not (tmp_path / "bad-data" / "orders").exists()
    try:  # the warehouse file, if the analytics side can build one
        from orders_pipeline.analytics.project import load_project
        from orders_pipeline.analytics.warehouse import build_warehouse

        build_warehouse(data, load_project())
    except Exception:  # noqa: BLE001 - the check below covers whatever DuckDB file exists
        pass
    assert list(data.rglob("*.parquet")) and list(home.rglob("*.db"))
    forms = set().union(*(_forms(v) for v in [*SECRETS.values(), "wrong+Secret/UNIQUE=99"]))
    for stream in (good.stdout, good.stderr, bad.stdout, bad.stderr):
        assert not [f for f in forms if f in stream]
    assert _leaks(home, forms) == []
    assert _leaks(data, forms) == []


def _buyers(sim: MwsSimulator, day: date):
    from .conftest import day_bounds

    store = sim._service.store
    start, end = day_bounds(day)
    refs = store.select(False, start.timestamp(), end.timestamp(), sim._service.now().timestamp())
    return [store.record(*ref).buyer for ref in refs if store.record(*ref).buyer is not None]


def test_personal_data_is_not_stored_by_default_and_only_hashed_on_opt_in(data_root, simulator):
    assert materialize(resource_for(simulator), DAY).success
    buyers = _buyers(simulator, DAY)
    assert len(buyers) > 10
    personal = {b.name for b in buyers} | {b.email for b in buyers} | {b.address_line1 for b in buyers} | {b.phone for b in buyers}
    for path in data_root.rglob("*.parquet"):
        table = pq.read_table(path)
        text = str(table.to_pylist())
        assert not [p for p in personal if p in text], path
        assert not [c for c in table.column_names if c != "buyer_email_sha256" and any(w in c for w in ("name", "email", "phone", "address_line"))], path
    orders = read_partition(data_root, "orders", DAY)
    assert all(r["buyer_email_sha256"] is None for r in orders)
    assert {r["shipping_address_city"] for r in orders} >= {b.city for b in buyers[:3]}  # geography is kept

    salt = "pepper-for-tests"
    assert materialize(resource_for(simulator, buyer_email_salt=salt), DAY).success
    orders = read_partition(data_root, "orders", DAY)
    hashes = {r["buyer_email_sha256"] for r in orders} - {None}
    assert len(hashes) > 10
    text = str(pq.read_table(partition_dir(data_root, "orders", DAY)).to_pylist())
    assert not [b.email for b in buyers if b.email in text] and salt not in text
    unsalted = {hashlib.sha256(b.email.encode()).hexdigest() for b in buyers}
    assert not hashes & unsalted  # salted: not a plain hash anyone can look up


def test_an_unreachable_endpoint_is_one_clear_error_after_quick_retries():
    """Transient by nature (the asset lets Dagster retry the step); the client gives up with one line."""
    from orders_pipeline.sources.mws.errors import MwsConnectionError

    client = MwsOrdersClient(f"http://127.0.0.1:{_closed_port()}", MwsCredentials("AKID", "k", "A1"), ["M1"], backoff_base=0.01)
    with pytest.raises(MwsConnectionError) as info:
        client.get_service_status()
    message = str(info.value)
    assert "cannot reach" in message and "Connection refused" in message and "MWS_ENDPOINT" in message and "\n" not in message
