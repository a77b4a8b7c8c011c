"""The Dagster resource that hands the SP-API source to the raw assets, secrets from environment variables."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import dagster as dg

from orders_pipeline.defs.resources import (
    EMBEDDED_SIMULATOR_TIME_SCALE, ApiSource, embedded_simulator_config, missing_secrets, setting, variable,
)
from orders_pipeline.sources.accounts import Account
from orders_pipeline.sources.sp_api.client import SpApiOrdersClient
from orders_pipeline.sources.sp_api.errors import SpApiConfigurationError
from orders_pipeline.sources.sp_api.lwa import DEFAULT_TOKEN_URL, LwaCredentials, LwaTokenClient
from orders_pipeline.sources.sp_api.report_source import SpApiReportsSource
from orders_pipeline.sources.sp_api.reports import SpApiReportsClient
from orders_pipeline.sources.sp_api.source import SpApiOrdersSource
from orders_pipeline.sources.sp_api.throttle import new_throttle
from orders_pipeline.storage.source_marker import claim_data_dir

ENVIRONMENT = {
    "endpoint": "SP_API_ENDPOINT",
    "token_url": "LWA_TOKEN_URL",
    "app_id": "LWA_APP_ID",
    "client_secret": "LWA_CLIENT_SECRET",
    "refresh_token": "SP_API_REFRESH_TOKEN",
    "marketplace_ids": "SP_API_MARKETPLACE_IDS",
    "buyer_email_salt": "ORDERS_BUYER_EMAIL_SALT",
}
REPORT_POLL_SECONDS = 15.0  # between getReport calls while a report is processed (2/s allowed; reports take minutes)
TOKEN_PATH = "/auth/o2/token"  # where the embedded simulator answers LWA, as api.amazon.com does


class SpApiResource(dg.ConfigurableResource):
    """Endpoint and Login with Amazon credentials of the Selling Partner API; without an endpoint, the embedded
    simulator's SP-API face. Every field left None is read from its environment variable in the process that opens
    the client, as `MwsResource` does, so no secret enters Dagster's config or run storage."""

    endpoint: Optional[str] = None
    token_url: Optional[str] = None
    app_id: Optional[str] = None
    client_secret: Optional[str] = None
    refresh_token: Optional[str] = None
    marketplace_ids: Optional[str] = None
    buyer_email_salt: Optional[str] = None

    @contextmanager
    def open_client(
        self, writing_into: Path | None = None, account: Account | None = None
    ) -> Iterator[tuple[SpApiOrdersClient, ApiSource]]:
        """A ready client and where it points; with `writing_into`, first refuse to mix demo and real data there. With
        `account`, everything comes from its entry in the accounts file and the variables it names."""
        folder = account.name if account else None
        endpoint = self._setting("endpoint", account)
        if endpoint:
            credentials, marketplaces = self._credentials(account), self._marketplaces(account)
            if writing_into is not None:
                claim_data_dir(writing_into, endpoint, folder)
            tokens = LwaTokenClient(credentials, self._setting("token_url", account) or DEFAULT_TOKEN_URL)
            with self._client(endpoint, tokens, marketplaces, time_scale=1.0) as client:
                yield client, ApiSource(client.endpoint_url, False, "SP-API", "SP_API_ENDPOINT", folder)
            return
        if writing_into is not None:
            claim_data_dir(writing_into, None, folder)
        from orders_pipeline.simulator import DEMO_SP_API_CREDENTIALS, MwsSimulator

        config = embedded_simulator_config(account)
        with MwsSimulator(config) as simulator:
            demo = DEMO_SP_API_CREDENTIALS
            tokens = LwaTokenClient(LwaCredentials(demo.app_id, demo.client_secret, demo.refresh_token),
                                    simulator.url + TOKEN_PATH)
            with self._client(simulator.url, tokens, config.marketplace_ids, EMBEDDED_SIMULATOR_TIME_SCALE) as client:
                yield client, ApiSource(simulator.url, True, "SP-API", "SP_API_ENDPOINT", folder)

    @contextmanager
    def open_source(
        self, writing_into: Path | None = None, bulk: bool = False, account: Account | None = None
    ) -> Iterator[tuple[SpApiOrdersSource | SpApiReportsSource, ApiSource]]:
        """The client of `open_client` behind the source seam: searchOrders, or with `bulk` (a range) the Reports API."""
        with self.open_client(writing_into, account) as (client, api):
            if not bulk:
                yield SpApiOrdersSource(client), api
                return
            time_scale = EMBEDDED_SIMULATOR_TIME_SCALE if api.is_embedded_simulator else 1.0
            reports = SpApiReportsClient(client, poll_seconds=REPORT_POLL_SECONDS / time_scale)
            yield SpApiReportsSource(client, reports), api

    def _setting(self, name: str, account: Account | None = None) -> str | None:
        """The setting now: a configured field or its variable, or the account's (see `setting`); None when unset."""
        return setting(self, ENVIRONMENT, name, account)

    def _client(self, endpoint: str, tokens: LwaTokenClient, marketplaces, time_scale: float) -> SpApiOrdersClient:
        salt = self._setting("buyer_email_salt")
        return SpApiOrdersClient(endpoint, tokens, marketplaces, include_personal_data=salt is not None,
                                 buyer_email_salt=salt, throttle=new_throttle(time_scale=time_scale))

    def _credentials(self, account: Account | None) -> LwaCredentials:
        values = {name: self._setting(name, account) for name in ("app_id", "client_secret", "refresh_token")}
        missing = [variable(ENVIRONMENT, name, account) for name, value in values.items() if not value]
        if missing:
            raise SpApiConfigurationError(
                missing_secrets(missing, account, "SP_API_ENDPOINT", "the app's Login with Amazon credentials")
            )
        return LwaCredentials(values["app_id"], values["client_secret"], values["refresh_token"])

    def _marketplaces(self, account: Account | None) -> list[str]:
        ids = [part.strip() for part in (self._setting("marketplace_ids", account) or "").split(",") if part.strip()]
        if not ids:
            raise SpApiConfigurationError(
                "SP_API_MARKETPLACE_IDS is not set: give the seller's marketplace ids, comma-separated (e.g. ATVPDKIKX0DER)"
            )
        return ids
