"""The Dagster resource that hands the MWS source to the raw assets, secrets from environment variables."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import dagster as dg

from orders_pipeline.sources.mws.client import MwsOrdersClient
from orders_pipeline.sources.mws.settings import MwsCredentials
from orders_pipeline.sources.mws.errors import MwsConfigurationError
from orders_pipeline.sources.mws.source import MwsOrdersSource
from orders_pipeline.storage.source_marker import claim_data_dir

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


def chosen_source() -> str:
    """$ORDERS_SOURCE as this process sees it now, trimmed and lower-cased; `mws` when unset."""
    return (dg.EnvVar(SOURCE_ENV).get_value() or "mws").strip().lower()


@dataclass(frozen=True)
class ApiSource:
    """Which API a run talked to, for logs and metadata (never credentials)."""

    endpoint: str
    is_embedded_simulator: bool
    api: str = "MWS"
    endpoint_variable: str = "MWS_ENDPOINT"

    def describe(self) -> str:
        """One line saying where the data came from."""
        if self.is_embedded_simulator:
            return (
                f"{self.endpoint_variable} is not set: using the EMBEDDED {self.api} SIMULATOR at {self.endpoint} "
                f"(synthetic demo data, quota clock x60). Set {self.endpoint_variable} and credentials for real data."
            )
        return f"{self.api} endpoint {self.endpoint}"


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
    def open_client(self, writing_into: Path | None = None) -> Iterator[tuple[MwsOrdersClient, ApiSource]]:
        """A ready client and where it points: the configured endpoint, or a freshly started simulator.

        With `writing_into` (a data dir), first refuse to mix demo and real data there (see source_marker).
        """
        endpoint = self._setting("endpoint")
        if endpoint:
            with self._client(endpoint, self._credentials(), self._marketplaces()) as client:
                if writing_into is not None:
                    claim_data_dir(writing_into, endpoint)
                yield client, ApiSource(client.endpoint_url, is_embedded_simulator=False)
            return
        if writing_into is not None:
            claim_data_dir(writing_into, None)
        from orders_pipeline.simulator import DEMO_CREDENTIALS, DEMO_MARKETPLACE_IDS, MwsSimulator, SimulatorConfig

        with MwsSimulator(SimulatorConfig(time_scale=EMBEDDED_SIMULATOR_TIME_SCALE)) as simulator:
            credentials = MwsCredentials(
                DEMO_CREDENTIALS.access_key_id, DEMO_CREDENTIALS.secret_key, DEMO_CREDENTIALS.seller_id
            )
            with self._client(simulator.url, credentials, DEMO_MARKETPLACE_IDS) as client:
                yield client, ApiSource(simulator.url, is_embedded_simulator=True)

    @contextmanager
    def open_source(
        self, writing_into: Path | None = None, bulk: bool = False
    ) -> Iterator[tuple[MwsOrdersSource, ApiSource]]:
        """The client of `open_client` behind the source seam, for ingestion (MWS has no bulk path: `bulk` is moot)."""
        with self.open_client(writing_into) as (client, api):
            yield MwsOrdersSource(client), api

    def _setting(self, name: str) -> str | None:
        """The configured value of a field, else its environment variable in this process now; None when neither is set."""
        return getattr(self, name) or dg.EnvVar(ENVIRONMENT[name]).get_value() or None

    def _client(self, endpoint: str, credentials: MwsCredentials, marketplaces: Sequence[str]) -> MwsOrdersClient:
        return MwsOrdersClient(endpoint, credentials, marketplaces, buyer_email_salt=self._setting("buyer_email_salt"))

    def _credentials(self) -> MwsCredentials:
        access_key_id, secret_key, seller_id = (self._setting(name) for name in ("access_key_id", "secret_key", "seller_id"))
        missing = [variable for variable, value in zip(("MWS_ACCESS_KEY_ID", "MWS_SECRET_KEY", "MWS_SELLER_ID"), (access_key_id, secret_key, seller_id)) if not value]
        if missing:
            raise MwsConfigurationError(
                f"MWS_ENDPOINT is set but {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not: "
                "export the seller's MWS credentials, or unset MWS_ENDPOINT to use the embedded simulator"
            )
        return MwsCredentials(access_key_id, secret_key, seller_id, self._setting("auth_token"))

    def _marketplaces(self) -> list[str]:
        ids = [part.strip() for part in (self._setting("marketplace_ids") or "").split(",") if part.strip()]
        if not ids:
            raise MwsConfigurationError(
                "MWS_MARKETPLACE_IDS is not set: give the seller's marketplace ids, comma-separated (e.g. ATVPDKIKX0DER)"
            )
        return ids
