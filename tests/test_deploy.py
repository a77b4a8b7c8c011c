"""deploy/: the shared instance, the code-location image and the Helm values, loaded and validated by real parsers."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import click
import dockerfile
import pytest
import yaml
from dagster import DagsterRun
from dagster._cli.code_server import code_server_cli
from dagster._config import process_config, resolve_to_config_type
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.instance.config import ConcurrencyConfig, dagster_instance_config
from dagster._core.instance.ref import InstanceRef
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster._core.workspace.config_schema import ensure_workspace_config
from dagster._serdes import ConfigurableClassData
from dagster._utils.tags import TagConcurrencyLimitsCounter

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
ACCOUNT_TAG = "dagster/partition/account"  # the tag Dagster gives a run of one (account, day) partition
SECRET_NAME = re.compile(r"^(MWS_|SP_API_|LWA_)|PASSWORD|SECRET|TOKEN", re.IGNORECASE)
INSTANCE_ENV = {
    "DAGSTER_PG_HOST": "postgres.test",
    "DAGSTER_PG_PORT": "5432",
    "DAGSTER_PG_USER": "dagster",
    "DAGSTER_PG_PASSWORD": "pg-password-from-env",
    "DAGSTER_PG_DB": "dagster",
    "DAGSTER_DOCKER_NETWORK": "orders",
}


@pytest.fixture
def instance_env(monkeypatch) -> None:
    """The variables deploy/dagster.yaml reads through `env:`, as a deployment would set them."""
    for name, value in INSTANCE_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def broken_copy(tmp_path) -> Callable[[str, Callable[[dict], None]], Path]:
    """Copy a deploy/ file into tmp_path with one change applied to its YAML; returns the copy's folder."""

    def make(name: str, change: Callable[[dict], None]) -> Path:
        config = load_yaml(DEPLOY / name)
        change(config)
        (tmp_path / name).write_text(yaml.safe_dump(config))
        return tmp_path

    return make


def load_yaml(path: Path) -> dict:
    """A YAML file as a dict."""
    return yaml.safe_load(path.read_text())


def class_config(data: ConfigurableClassData) -> Mapping[str, Any]:
    """The class's config after Dagster's own validation of it (what loading the instance does, without connecting)."""
    klass = getattr(importlib.import_module(data.module_name), data.class_name)
    result = process_config(resolve_to_config_type(klass.config_type()), data.config_dict)
    if not result.success:
        raise DagsterInvalidConfigError(f"{data.class_name} config", result.errors, data.config_dict)
    return result.value


def checked_instance(config_dir: Path) -> InstanceRef:
    """The instance a dagster.yaml in `config_dir` describes, each configured class validated against its schema."""
    ref = InstanceRef.from_dir(str(config_dir))
    for data in (ref.storage_data, ref.run_coordinator_data, ref.run_launcher_data):
        class_config(data)
    return ref


def run_for(account: str) -> DagsterRun:
    """A run of the raw assets for one seller account."""
    return DagsterRun(job_name="raw_orders", tags={ACCOUNT_TAG: account})


def scalars(tree: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (dotted path, scalar) in a YAML tree; list items are numbered."""
    if isinstance(tree, Mapping):
        for key, value in tree.items():
            yield from scalars(value, f"{path}.{key}" if path else str(key))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            yield from scalars(value, f"{path}.{index}")
    else:
        yield path, tree


# --- deploy/dagster.yaml ------------------------------------------------------------------------------------------


def test_instance_config_passes_dagsters_validation(instance_env):
    ref = checked_instance(DEPLOY)

    assert (ref.storage_data.module_name, ref.storage_data.class_name) == ("dagster_postgres", "DagsterPostgresStorage")
    assert ref.run_coordinator_data.class_name == "QueuedRunCoordinator"
    assert (ref.run_launcher_data.module_name, ref.run_launcher_data.class_name) == ("dagster_docker", "DockerRunLauncher")
    assert ref.settings["run_monitoring"]["enabled"] is True
    postgres = class_config(ref.storage_data)["postgres_db"]
    assert (postgres["hostname"], postgres["password"]) == ("postgres.test", "pg-password-from-env")


def test_instance_config_holds_no_secret(instance_env):
    ref = InstanceRef.from_dir(str(DEPLOY))

    postgres = load_yaml(DEPLOY / "dagster.yaml")["storage"]["postgres"]["postgres_db"]
    assert all(set(value) == {"env"} for value in postgres.values()), "every connection setting comes from env"
    serialized = yaml.safe_dump(
        [ref.storage_data.config_dict, ref.run_launcher_data.config_dict, ref.run_coordinator_data.config_dict]
    )
    assert INSTANCE_ENV["DAGSTER_PG_PASSWORD"] not in serialized, "the instance ref (stored with runs) keeps names only"
    launcher_env = ref.run_launcher_data.config_dict["env_vars"]
    assert all("=" not in name for name in launcher_env), "the launcher copies variables by name, never a value"


def test_one_account_runs_at_a_time_while_other_accounts_run_alongside(instance_env):
    ref = InstanceRef.from_dir(str(DEPLOY))
    coordinator = ref.run_coordinator_data.rehydrate(QueuedRunCoordinator)
    concurrency = ConcurrencyConfig.from_concurrency_settings(
        ref.settings["concurrency"], coordinator.get_run_queue_config()
    )

    queue = TagConcurrencyLimitsCounter(concurrency.run_queue_config.tag_concurrency_limits, [run_for("eu-brand")])

    assert queue.is_blocked(run_for("eu-brand"))
    assert not queue.is_blocked(run_for("us-brand"))


def test_pools_keep_the_meaning_of_the_repos_instance(instance_env):
    deployed = InstanceRef.from_dir(str(DEPLOY)).settings["concurrency"]["pools"]
    local = load_yaml(REPO / "dagster.yaml")["concurrency"]["pools"]

    assert deployed == local == {"default_limit": 1}, "mws_api and analytics: one slot each"


def test_the_repo_and_the_cluster_limit_the_account_tag_the_raw_runs_carry(instance_env):
    from orders_pipeline.defs.partitions import ACCOUNT_TAG as RAW_RUN_TAG

    deployed = InstanceRef.from_dir(str(DEPLOY)).settings["concurrency"]["runs"]["tag_concurrency_limits"]
    local = load_yaml(REPO / "dagster.yaml")["concurrency"]["runs"]["tag_concurrency_limits"]
    helm = load_yaml(DEPLOY / "helm" / "values.yaml")["concurrency"]["runs"]["tagConcurrencyLimits"]

    assert deployed == local == helm == [{"key": RAW_RUN_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1}]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c["concurrency"]["runs"].update(tag_concurency_limits=[]), "tag_concurency_limits"),
        (lambda c: c["run_launcher"]["config"].update(netwrok="orders"), "netwrok"),
        (lambda c: c["run_coordinator"]["config"].update(tag_concurrency_limits=[]), "tag_concurrency_limits"),
        (lambda c: c["storage"]["postgres"]["postgres_db"].pop("hostname"), "hostname"),
    ],
    ids=["misspelt-limits", "unknown-launcher-setting", "limits-in-two-places", "no-postgres-host"],
)
def test_a_broken_instance_config_fails_validation(instance_env, broken_copy, change, message):
    with pytest.raises(DagsterInvalidConfigError) as failure:
        checked_instance(broken_copy("dagster.yaml", change))

    assert message in str(failure.value) + "".join(str(error) for error in failure.value.errors)


def test_workspace_points_at_the_code_server_the_image_starts():
    path = DEPLOY / "workspace.yaml"
    workspace = ensure_workspace_config(load_yaml(path), str(path))

    (location,) = workspace["load_from"]
    assert location["grpc_server"]["port"] == int(dict(pairs(docker_cmd()))["-p"])
    assert location["grpc_server"]["location_name"] == load_yaml(REPO / "workspace.yaml")["load_from"][0]["python_module"]["location_name"]


# --- deploy/helm/values.yaml --------------------------------------------------------------------------------------


def helm_instance_settings(values: Mapping[str, Any]) -> dict:
    """The `concurrency` and `run_monitoring` blocks the chart renders into its dagster.yaml from these values."""
    runs, pools = values["concurrency"]["runs"], values["concurrency"]["pools"]
    monitoring = values["dagsterDaemon"]["runMonitoring"]
    return {
        "concurrency": {
            "runs": {"max_concurrent_runs": runs["maxConcurrentRuns"], "tag_concurrency_limits": runs["tagConcurrencyLimits"]},
            "pools": {"default_limit": pools["defaultLimit"]},
        },
        "run_monitoring": {
            "enabled": monitoring["enabled"],
            "start_timeout_seconds": monitoring["startTimeoutSeconds"],
            "poll_interval_seconds": monitoring["pollIntervalSeconds"],
            "free_slots_after_run_end_seconds": monitoring["freeSlotsAfterRunEndSeconds"],
        },
    }


def check_helm_limits(values: Mapping[str, Any], workdir: Path) -> None:
    """The instance the chart renders from `values` passes Dagster's validation and has deploy/dagster.yaml's limits."""
    (workdir / "dagster.yaml").write_text(yaml.safe_dump(helm_instance_settings(values)))
    validated, _ = dagster_instance_config(str(workdir))
    assert values["concurrency"]["enabled"] is True
    assert validated["concurrency"] == load_yaml(DEPLOY / "dagster.yaml")["concurrency"], "same limits as deploy/dagster.yaml"
    assert validated["run_monitoring"]["enabled"] is True
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert (coordinator["enabled"], coordinator["type"]) == (True, "QueuedRunCoordinator")
    assert "tagConcurrencyLimits" not in coordinator["config"]["queuedRunCoordinator"], "the chart refuses limits in two places"


def test_helm_values_give_the_cluster_the_same_limits(tmp_path):
    check_helm_limits(load_yaml(DEPLOY / "helm" / "values.yaml"), tmp_path)


def account_limit(values: dict) -> dict:
    """The per-account entry of the Helm values' run tag limits."""
    return values["concurrency"]["runs"]["tagConcurrencyLimits"][0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda v: account_limit(v).update(value={"applyLimitPerUniqueValu": True}), "applyLimitPerUniqueValu"),
        (lambda v: account_limit(v).update(limit=2), "same limits"),
        (
            lambda v: v["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"].update(
                tagConcurrencyLimits=[account_limit(v)]
            ),
            "two places",
        ),
    ],
    ids=["misspelt-per-value", "two-runs-per-account", "limits-in-two-places"],
)
def test_broken_helm_limits_fail(tmp_path, change, message):
    values = load_yaml(DEPLOY / "helm" / "values.yaml")
    change(values)

    with pytest.raises((AssertionError, DagsterInvalidConfigError)) as failure:
        check_helm_limits(values, tmp_path)

    errors = getattr(failure.value, "errors", [])
    assert message in str(failure.value) + "".join(str(error) for error in errors)


def test_helm_values_have_what_the_chart_needs():
    values = load_yaml(DEPLOY / "helm" / "values.yaml")
    user_code = values["dagster-user-deployments"]
    (deployment,) = user_code["deployments"]
    launcher = values["runLauncher"]
    postgres = values["postgresql"]

    assert user_code["enabled"] and user_code["enableSubchart"]
    assert {"name", "image", "port", "codeServerArgs"} <= set(deployment)
    assert {"repository", "tag", "pullPolicy"} <= set(deployment["image"])
    assert deployment["image"]["pullPolicy"] in {"Always", "IfNotPresent", "Never"}
    assert deployment["codeServerArgs"] == ["-m", "orders_pipeline.definitions"]
    assert deployment["port"] == int(dict(pairs(docker_cmd()))["-p"])
    assert launcher["type"] == "K8sRunLauncher" and "k8sRunLauncher" in launcher["config"]
    assert postgres["enabled"] is False and all(postgres[key] for key in ("postgresqlHost", "postgresqlUsername", "postgresqlDatabase"))
    assert postgres["service"]["port"] == 5432
    assert values["generatePostgresqlPasswordSecret"] is False and values["global"]["postgresqlSecretName"]


def test_helm_values_name_secrets_and_hold_none():
    values = load_yaml(DEPLOY / "helm" / "values.yaml")
    (deployment,) = values["dagster-user-deployments"]["deployments"]

    keys = [(path.rsplit(".", 1)[-1], value) for path, value in scalars(values)]
    leaked = [key for key, value in keys if SECRET_NAME.search(key) and not key.lower().endswith("name") and value]
    assert leaked == [], "a secret's value belongs in a Kubernetes Secret, not in values.yaml"
    assert "postgresqlPassword" not in values["postgresql"]
    assert deployment["envSecrets"] == values["runLauncher"]["config"]["k8sRunLauncher"]["envSecrets"] == [{"name": "orders-pipeline-api"}]
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True


# --- deploy/Dockerfile --------------------------------------------------------------------------------------------

DOCKERFILE = DEPLOY / "Dockerfile"


def instructions(path: Path) -> list[dockerfile.Command]:
    """The Dockerfile as BuildKit's parser reads it."""
    return list(dockerfile.parse_file(str(path)))


def docker_cmd(path: Path = DOCKERFILE) -> list[str]:
    """The exec-form CMD (the last one wins)."""
    *_, cmd = [command for command in instructions(path) if command.cmd == "CMD"]
    assert cmd.json, "CMD in exec (JSON) form, so signals reach the code server"
    return list(cmd.value)


def pairs(args: list[str]) -> list[tuple[str, str]]:
    """`-x value` pairs after `dagster code-server start`."""
    options = args[3:]
    return list(zip(options[::2], options[1::2]))


def check_code_location_image(path: Path) -> None:
    """python:3.11-slim, `dagster code-server start` on 0.0.0.0:4000 for our module, as a non-root user."""
    commands = instructions(path)
    kinds = [command.cmd for command in commands]
    cmd = docker_cmd(path)
    assert commands[0].cmd == "FROM" and commands[0].value == ("python:3.11-slim",)
    assert cmd[:3] == ["dagster", "code-server", "start"]
    parsed = code_server_cli.commands["start"].make_context("start", cmd[3:]).params
    assert (parsed["module_name"], parsed["host"], parsed["port"]) == ("orders_pipeline.definitions", "0.0.0.0", 4000)
    assert importlib.import_module(parsed["module_name"]).defs is not None
    assert "USER" in kinds, "the server runs unprivileged"
    user_at = len(kinds) - 1 - kinds[::-1].index("USER")
    assert commands[user_at].value[0] not in {"root", "0"} and "RUN" not in kinds[user_at:], "the server runs unprivileged"
    assert ("4000",) in [command.value for command in commands if command.cmd == "EXPOSE"]


def check_no_baked_secret(path: Path) -> None:
    """No ENV or ARG names a credential."""
    for command in instructions(path):
        if command.cmd in {"ENV", "ARG"}:
            names = command.value[::2] if command.cmd == "ENV" else [arg.split("=")[0] for arg in command.value]
            assert not [name for name in names if SECRET_NAME.search(name)], f"baked-in secret: {command.original}"


def test_dockerfile_starts_the_code_location_as_a_non_root_user():
    check_code_location_image(DOCKERFILE)


def test_dockerfile_bakes_in_no_secret():
    check_no_baked_secret(DOCKERFILE)


@pytest.mark.parametrize(
    ("edit", "check", "message"),
    [
        (lambda text: text.replace("USER dagster\n", ""), check_code_location_image, "unprivileged"),
        (lambda text: text.replace('"-p", "4000"', '"--prot", "4000"'), check_code_location_image, "--prot"),
        (lambda text: text.replace("ORDERS_DATA_DIR=/data", "ORDERS_DATA_DIR=/data \\\n    MWS_SECRET_KEY=abc"), check_no_baked_secret, "MWS_SECRET_KEY"),
    ],
    ids=["runs-as-root", "unknown-option", "baked-secret"],
)
def test_a_broken_dockerfile_fails(tmp_path, edit, check, message):
    broken = tmp_path / "Dockerfile"
    broken.write_text(edit(DOCKERFILE.read_text()))
    assert broken.read_text() != DOCKERFILE.read_text()

    with pytest.raises((AssertionError, click.UsageError)) as failure:
        check(broken)

    assert message in str(failure.value)
