"""Several accounts through Dagster's `materialize` on the account x day grid: an MWS and an SP-API account side by side,
each from its own simulator over real HTTP and its own variables; one bad secret fails only its account."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from orders_pipeline.defs.assets.raw import raw_assets
from orders_pipeline.defs.resources import MwsResource
from orders_pipeline.defs.schedules import daily_run_requests
from orders_pipeline.defs.sp_api_resource import SpApiResource
from orders_pipeline.simulator import DEMO_CREDENTIALS, DEMO_MARKETPLACE_IDS, DEMO_SP_API_CREDENTIALS, MwsSimulator, SimulatorConfig
from orders_pipeline.sources.accounts import load_accounts
from orders_pipeline.storage.layout import partition_dir, read_manifest

from .conftest import FAST, assert_matches_simulator, read_partition

DAY = date(2024, 3, 3)
SECRETS = {  # the variables the accounts file names, as a deployment would export them
    "US_KEY_ID": DEMO_CREDENTIALS.access_key_id, "US_SECRET": DEMO_CREDENTIALS.secret_key, "US_SELLER": DEMO_CREDENTIALS.seller_id,
    "EU_APP": DEMO_SP_API_CREDENTIALS.app_id, "EU_APP_SECRET": DEMO_SP_API_CREDENTIALS.client_secret,
    "EU_REFRESH": DEMO_SP_API_CREDENTIALS.refresh_token,
}


def accounts_file(tmp_path: Path, us: MwsSimulator, eu: MwsSimulator) -> Path:
    """An MWS account and an SP-API account, each at its own simulator, secrets by variable name only."""
    marketplaces = ", ".join(DEMO_MARKETPLACE_IDS)
    path = tmp_path / "accounts.yaml"
    path.write_text(f"""
accounts:
  - name: us-mws
    source: mws
    marketplaces: [{marketplaces}]
    endpoint: {us.url}
    secrets: {{access_key_id: US_KEY_ID, secret_key: US_SECRET, seller_id: US_SELLER}}
  - name: eu-sp
    source: sp-api
    marketplaces: [{marketplaces}]
    endpoint: {eu.url}
    token_url: {eu.url}/auth/o2/token
    secrets: {{app_id: EU_APP, client_secret: EU_APP_SECRET, refresh_token: EU_REFRESH}}
""")
    return path


@pytest.fixture
def two_simulators():
    """Two sellers' APIs: different seeds, so different orders."""
    with MwsSimulator(SimulatorConfig(time_scale=FAST)) as us, MwsSimulator(SimulatorConfig(time_scale=FAST, seed=11)) as eu:
        yield us, eu


def materialize(asset: dg.AssetsDefinition, account: str, day: date = DAY) -> dg.ExecuteInProcessResult:
    """One (account, day) partition, resources unconfigured as in the code location (all from the account's entry)."""
    key = dg.MultiPartitionKey({"account": account, "day": day.isoformat()})
    return dg.materialize([asset], partition_key=key, resources={"mws": MwsResource(), "sp_api": SpApiResource()},
                          raise_on_error=False, run_config={"execution": {"config": {"in_process": {"retries": {"disabled": {}}}}}})


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    return next(event for event in result.all_events if event.is_step_failure).step_failure_data.user_failure_data.description


def test_an_mws_and_an_sp_api_account_land_side_by_side_each_in_its_folder(tmp_path, data_root, monkeypatch, two_simulators):
    us, eu = two_simulators
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    asset = raw_assets(load_accounts(accounts_file(tmp_path, us, eu)))

    results = {account: materialize(asset, account) for account in ("us-mws", "eu-sp")}

    assert all(result.success for result in results.values())
    assert_matches_simulator(data_root, us, DAY, account="us-mws")
    assert_matches_simulator(data_root, eu, DAY, account="eu-sp")
    assert us.stats.requests_by_action.get("ListOrders", 0) > 0 and eu.stats.total_requests > 0
    us_orders = {row["amazon_order_id"] for row in read_partition(data_root, "orders", DAY, "us-mws")}
    eu_orders = {row["amazon_order_id"] for row in read_partition(data_root, "orders", DAY, "eu-sp")}
    assert us_orders and eu_orders and not us_orders & eu_orders
    assert sorted(p.relative_to(data_root).as_posix() for p in data_root.rglob("*.parquet")) == [
        f"{table}/account={account}/dt=2024-03-03/part-0.parquet" for table in ("order_items", "orders") for account in ("eu-sp", "us-mws")
    ]
    for account, source in (("us-mws", "mws"), ("eu-sp", "sp-api")):
        metadata = {m.asset_key.to_user_string(): m.metadata for m in results[account].asset_materializations_for_node("mws_orders")}
        assert metadata["orders"]["account"].value == account and metadata["orders"]["source"].value == source
        manifest = read_manifest(partition_dir(data_root, "orders", DAY, account))
        assert (manifest["account"], manifest["source"], manifest["complete"]) == (account, source, True)
        checks = {c.check_name: c.passed for c in results[account].get_asset_check_evaluations()}
        assert len(checks) == 5 and all(checks.values())
        assert results[account].dagster_run.tags["dagster/partition/account"] == account
        stored = json.dumps([str(event) for event in results[account].all_events])
        assert not any(secret in stored for secret in SECRETS.values())


def test_a_bad_secret_fails_only_its_accounts_run_in_one_line(tmp_path, data_root, monkeypatch, two_simulators):
    us, eu = two_simulators
    for name, value in {**SECRETS, "EU_APP_SECRET": "wrong-client-secret-123"}.items():
        monkeypatch.setenv(name, value)
    asset = raw_assets(load_accounts(accounts_file(tmp_path, us, eu)))

    failed, succeeded = materialize(asset, "eu-sp"), materialize(asset, "us-mws")

    assert not failed.success and succeeded.success
    message = failure_message(failed)
    assert "\n" not in message and message.startswith("Partition eu-sp 2024-03-03 not written"), message
    assert "invalid_client" in message and "wrong-client-secret-123" not in message
    assert not list(data_root.glob("*/account=eu-sp/dt=*")), "the failing account wrote nothing"
    assert_matches_simulator(data_root, us, DAY, account="us-mws")


def test_an_unset_secret_variable_is_named_with_the_account(tmp_path, data_root, monkeypatch, two_simulators):
    us, eu = two_simulators
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("US_SECRET")
    asset = raw_assets(load_accounts(accounts_file(tmp_path, us, eu)))

    message = failure_message(materialize(asset, "us-mws"))

    assert "account us-mws has an endpoint but US_SECRET is not set" in message and "accounts file" in message
    assert us.stats.total_requests == 0


def test_simulated_accounts_each_have_their_own_orders_and_marker(data_root, tmp_path):
    """Without endpoints each account runs its own embedded simulator (its own seed); markers are per account."""
    path = tmp_path / "accounts.toml"
    path.write_text('[[accounts]]\nname = "demo-a"\nsource = "mws"\n\n[[accounts]]\nname = "demo-b"\nsource = "sp-api"\n'
                    'marketplaces = ["A1F83G8C2ARO7P", "A1PA6795UKMFR9"]\n')
    asset = raw_assets(load_accounts(path))

    assert materialize(asset, "demo-a").success and materialize(asset, "demo-b").success

    rows = {account: read_partition(data_root, "orders", DAY, account) for account in ("demo-a", "demo-b")}
    orders = {account: {r["amazon_order_id"] for r in rows[account]} for account in rows}
    assert orders["demo-a"] and orders["demo-b"] and not orders["demo-a"] & orders["demo-b"]
    # a simulated account sells in the marketplaces its entry lists (the demo's when it lists none)
    assert {r["marketplace_id"] for r in rows["demo-b"]} == {"A1F83G8C2ARO7P", "A1PA6795UKMFR9"}
    assert {r["marketplace_id"] for r in rows["demo-a"]} == set(DEMO_MARKETPLACE_IDS)
    for account in ("demo-a", "demo-b"):
        marker = json.loads((data_root / "orders" / f"account={account}" / "_source.json").read_text())
        assert marker["kind"] == "embedded-simulator"
    assert not (data_root / "_source.json").exists()


def test_an_account_with_demo_data_refuses_its_new_real_endpoint_while_others_are_free(tmp_path, data_root, monkeypatch, two_simulators):
    us, eu = two_simulators
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    simulated = tmp_path / "simulated.yaml"
    simulated.write_text("accounts:\n  - name: us-mws\n    source: mws\n")
    assert materialize(raw_assets(load_accounts(simulated)), "us-mws").success

    real = raw_assets(load_accounts(accounts_file(tmp_path, us, eu)))
    refused, other = materialize(real, "us-mws"), materialize(real, "eu-sp")

    message = failure_message(refused)
    assert "holds demo data from the embedded simulator" in message and "account us-mws" in message
    assert us.stats.total_requests == 0
    assert other.success


def test_the_schedule_asks_every_account_for_yesterday_and_the_resweep_days(monkeypatch):
    monkeypatch.setenv("ORDERS_RESWEEP_DAYS", "1")
    requests = list(daily_run_requests(date(2024, 3, 10), ["us-mws", "eu-sp"]))

    assert [request.run_key for request in requests] == [
        "us-mws/2024-03-09@2024-03-10", "eu-sp/2024-03-09@2024-03-10", "us-mws/2024-03-08@2024-03-10", "eu-sp/2024-03-08@2024-03-10",
    ]
    assert requests[1].partition_key.keys_by_dimension == {"account": "eu-sp", "day": "2024-03-09"}
    assert [r.partition_key for r in daily_run_requests(date(2024, 3, 10), [])] == ["2024-03-09", "2024-03-08"]


def test_a_backfill_on_the_grid_is_one_run_per_account_and_day_each_tagged_with_its_account(tmp_path):
    """What the backfill daemon plans for a UI backfill (Dagster's own planner): every run carries the account tag the
    run queue limits, also when the selection has fewer days than accounts."""
    from dagster._core.definitions.assets.graph.asset_graph import AssetGraph
    from dagster._core.definitions.automation_tick_evaluation_context import build_run_requests_with_backfill_policies
    from dagster._core.definitions.events import AssetKeyPartitionKey

    path = tmp_path / "accounts.yaml"
    path.write_text("accounts:\n" + "".join(f"  - name: {name}\n    source: mws\n" for name in ("a", "b", "c")))
    asset = raw_assets(load_accounts(path))
    selected = [f"{account}|2024-03-0{day}" for account in ("a", "b", "c") for day in (1, 2)]
    with dg.DagsterInstance.ephemeral() as instance:
        requests = build_run_requests_with_backfill_policies(
            [AssetKeyPartitionKey(key, partition) for key in asset.keys for partition in selected],
            AssetGraph.from_assets([asset]), instance,
        )

    assert sorted(request.tags["dagster/partition"] for request in requests) == sorted(selected)
    assert all(request.tags["dagster/partition/account"] == request.tags["dagster/partition"].split("|")[0] for request in requests)
