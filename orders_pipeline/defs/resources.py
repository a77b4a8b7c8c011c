"""The Dagster resource that hands the MWS source to the raw assets, secrets from environment variables."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import dagster as dg

from orders_pipeline.sources.mws.client import MwsOrdersClient
from orders_pipeline.sources.mws.settings import MwsCredentials
from orders_pipeline.sources.mws.errors import MwsConfigurationError
from orders_pipeline.sources.mws.source import MwsOrdersSource
from orders_pipeline.sources.accounts import Account
from orders_pipeline.storage.source_marker import claim_data_dir

if TYPE_CHECKING:  # the simulator is imported only when a run uses it
    from orders_pipeline.simulator import SimulatorConfig

ENVIRONMENT = {
    "endpoint": "MWS_ENDPOINT",
    "access_key_id": "MWS_ACCESS_KEY_ID",
    "secret_key": "MWS_SECRET_KEY",
    "seller_id": "MWS_SELLER_ID",
    "auth_token": "MWS_AUTH_TOKEN",
    "marketplace_ids": "MWS_MARKETPLACE_IDS",
    "buyer_email_salt": "ORDERS_BUYER_EMAIL_SALT",
}
EMBEDDED_SIMULATOR_TIME_SCALE = 60.0
SOURCE_ENV = "ORDERS_SOURCE"
SOURCES = ("mws", "sp-api")
ACCOUNT_SETTINGS = ("endpoint", "token_url", "marketplace_ids")  # from the account's entry; its secrets from the variables it names


def chosen_source() -> str:
    """$ORDERS_SOURCE as this process sees it now, trimmed and lower-cased; `mws` when unset."""
    return (dg.EnvVar(SOURCE_ENV).get_value() or "mws").strip().lower()


def setting(resource: dg.ConfigurableResource, environment: dict[str, str], name: str, account: Account | None) -> str | None:
    """A resource's setting now, in this process: without an account, the configured field or else its variable; for an
    account, its entry's endpoint and marketplaces and the variables it names for its secrets (the rest as without)."""
    if account is not None and name in ACCOUNT_SETTINGS:
        return ",".join(account.marketplace_ids) if name == "marketplace_ids" else getattr(account, name)
    if account is not None and name in account.secret_variables:
        return dg.EnvVar(account.secret_variables[name]).get_value() or None
    return getattr(resource, name) or dg.EnvVar(environment[name]).get_value() or None


def variable(environment: dict[str, str], name: str, account: Account | None) -> str:
    """The variable a secret is read from, for messages."""
    return account.secret_variables[name] if account is not None else environment[name]


def missing_secrets(missing: list[str], account: Account | None, endpoint_variable: str, fix: str) -> str:
    """One line: which secret variables are unset although an endpoint is configured, and the fix."""
    unset = f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not"
    if account is None:
        return f"{endpoint_variable} is set but {unset}: export {fix}, or unset {endpoint_variable} to use the embedded simulator"
    return (f"account {account.name} has an endpoint but {unset} set: export {fix} in the variables its entry in the "
            "accounts file names, or remove its endpoint to use the embedded simulator")


def embedded_simulator_config(account: Account | None) -> SimulatorConfig:
    """The embedded simulator's settings: the demo's, or for an account its own seed and marketplaces (so each
    simulated account has its own orders, in the marketplaces its entry lists)."""
    from orders_pipeline.simulator import DEMO_MARKETPLACE_IDS, SimulatorConfig

    if account is None:
        return SimulatorConfig(time_scale=EMBEDDED_SIMULATOR_TIME_SCALE)
    return SimulatorConfig(time_scale=EMBEDDED_SIMULATOR_TIME_SCALE, seed=account.simulator_seed,
                           marketplace_ids=account.marketplace_ids or DEMO_MARKETPLACE_IDS)


@dataclass(frozen=True)
class ApiSource:
    """Which API a run talked to, for logs and metadata (never credentials)."""

    endpoint: str
    is_embedded_simulator: bool
    api: str = "MWS"
    endpoint_variable: str = "MWS_ENDPOINT"
    account: str | None = None

    def describe(self) -> str:
        """One line saying where the data came from (and for which account)."""
        if self.is_embedded_simulator and self.account:
            return (
                f"account {self.account} has no endpoint: using the EMBEDDED {self.api} SIMULATOR at {self.endpoint} "
                f"(synthetic demo data of its own, quota clock x60). Give it an endpoint in the accounts file for real data."
            )
        if self.is_embedded_simulator:
            return (
                f"{self.endpoint_variable} is not set: using the EMBEDDED {self.api} SIMULATOR at {self.endpoint} "
                f"(synthetic demo data, quota clock x60). Set {self.endpoint_variable} and credentials for real data."
            )
        return f"{self.api} endpoint {self.endpoint}" + (f" (account {self.account})" if self.account else "")


class MwsResource(dg.ConfigurableResource):
    """Endpoint and credentials of the MWS Orders API; without an endpoint, the embedded simulator.

    A field left None is read from its environment variable (ENVIRONMENT) when a client is opened, in the process
    that opens it. The code location sets no field, so the code server, a run worker and the CLI resolve alike,
    whatever the environment was when the code was loaded, and no value enters Dagster's config or run storage.
    """

    endpoint: Optional[str] = None
    access_key_id: Optional[str] = None
    secret_key: Optional[str] = None
    seller_id: Optional[str] = None
    auth_token: Optional[str] = None
    marketplace_ids: Optional[str] = None
    buyer_email_salt: Optional[str] = None

    @contextmanager
    def open_client(
        self, writing_into: Path | None = None, account: Account | None = None
    ) -> Iterator[tuple[MwsOrdersClient, ApiSource]]:
        """A ready client and where it points: the configured endpoint, or a freshly started simulator.

        With `writing_into` (a data dir), first refuse to mix demo and real data there (see source_marker). With
        `account`, everything comes from its entry in the accounts file and the variables it names.
        """
        folder = account.name if account else None
        endpoint = self._setting("endpoint", account)
        if endpoint:
            with self._client(endpoint, self._credentials(account), self._marketplaces(account)) as client:
                if writing_into is not None:
                    claim_data_dir(writing_into, endpoint, folder)
                yield client, ApiSource(client.endpoint_url, is_embedded_simulator=False, account=folder)
            return
        if writing_into is not None:
            claim_data_dir(writing_into, None, folder)
        from orders_pipeline.simulator import DEMO_CREDENTIALS, MwsSimulator

        config = embedded_simulator_config(account)
        with MwsSimulator(config) as simulator:
            credentials = MwsCredentials(
                DEMO_CREDENTIALS.access_key_id, DEMO_CREDENTIALS.secret_key, DEMO_CREDENTIALS.seller_id
            )
            with self._client(simulator.url, credentials, config.marketplace_ids) as client:
                yield client, ApiSource(simulator.url, is_embedded_simulator=True, account=folder)

    @contextmanager
    def open_source(
        self, writing_into: Path | None = None, bulk: bool = False, account: Account | None = None
    ) -> Iterator[tuple[MwsOrdersSource, ApiSource]]:
        """The client of `open_client` behind the source seam, for ingestion (MWS has no bulk path: `bulk` is moot)."""
        with self.open_client(writing_into, account) as (client, api):
            yield MwsOrdersSource(client), api

    def _setting(self, name: str, account: Account | None = None) -> str | None:
        """The setting now: a configured field or its variable, or the account's (see `setting`); None when unset."""
        return setting(self, ENVIRONMENT, name, account)

    def _client(self, endpoint: str, credentials: MwsCredentials, marketplaces: Sequence[str]) -> MwsOrdersClient:
        return MwsOrdersClient(endpoint, credentials, marketplaces, buyer_email_salt=self._setting("buyer_email_salt"))

    def _credentials(self, account: Account | None) -> MwsCredentials:
        names = ("access_key_id", "secret_key", "seller_id")
        access_key_id, secret_key, seller_id = (self._setting(name, account) for name in names)
        missing = [variable(ENVIRONMENT, name, account) for name, value in zip(names, (access_key_id, secret_key, seller_id)) if not value]
        if missing:
            raise MwsConfigurationError(missing_secrets(missing, account, "MWS_ENDPOINT", "the seller's MWS credentials"))
        return MwsCredentials(access_key_id, secret_key, seller_id, self._setting("auth_token", account))

    def _marketplaces(self, account: Account | None) -> list[str]:
        ids = [part.strip() for part in (self._setting("marketplace_ids", account) or "").split(",") if part.strip()]
        if not ids:
            raise MwsConfigurationError(
                "MWS_MARKETPLACE_IDS is not set: give the seller's marketplace ids, comma-separated (e.g. ATVPDKIKX0DER)"
            )
        return ids
