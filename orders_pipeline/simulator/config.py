"""Configuration of the simulator: the seller it impersonates, its data and the faults it injects."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable


@dataclass(frozen=True)
class Credentials:
    """MWS credentials the simulator accepts (and the seller it answers for)."""

    access_key_id: str
    secret_key: str
    seller_id: str
    auth_token: str | None = None


DEMO_CREDENTIALS = Credentials(
    "AKIDEMOSIMULATOR0001", "demo-secret-key-not-a-real-secret", "A1DEMOSELLER00", None
)
DEMO_MARKETPLACE_IDS: tuple[str, ...] = ("ATVPDKIKX0DER", "A2EUQ1WTGCTBG2", "A1F83G8C2ARO7P")


@dataclass(frozen=True)
class SpApiCredentials:
    """The LWA app and refresh token the SP-API face accepts (fake values, never real secrets)."""

    app_id: str
    client_secret: str
    refresh_token: str


DEMO_SP_API_CREDENTIALS = SpApiCredentials(
    "amzn1.application-oa2-client.demo0000000000000000000000000001",
    "amzn1.oa2-cs.v1.demo-client-secret-not-a-real-secret",
    "Atzr|demo-refresh-token-not-a-real-token",
)
REPORT_OUTCOMES = ("FATAL", "CANCELLED")


@dataclass
class Faults:
    """Failures injected on purpose; every default is off."""

    server_error_every: int = 0
    fail_request_numbers: frozenset[int] = frozenset()  # answered 503 ServiceUnavailable
    internal_error_request_numbers: frozenset[int] = frozenset()  # answered 500 InternalError
    reset_request_numbers: frozenset[int] = frozenset()
    slow_request_numbers: frozenset[int] = frozenset()
    slow_seconds: float = 5.0
    truncate_window_hours: float | None = None
    duplicate_across_pages: bool = False
    messy_values: bool = False
    external_throttle: bool = False
    expire_token_request_numbers: frozenset[int] = frozenset()  # SP-API: the token sent with these expires (403)
    report_outcome: str | None = None  # SP-API: every report ends FATAL or CANCELLED instead of DONE
    failed_downloads: int = 0  # SP-API: the first N report-document downloads answer 503 SlowDown, as S3 can


@dataclass
class SimulatorConfig:
    """Everything that decides what the simulator answers."""

    credentials: Credentials = DEMO_CREDENTIALS
    marketplace_ids: tuple[str, ...] = DEMO_MARKETPLACE_IDS
    seed: int = 7
    orders_per_day: int = 40
    restated_share: float = 0.0  # of Unshipped orders, those updated again without a status change
    time_scale: float = 1.0
    throttling: bool = True
    list_orders_page_size_cap: int = 100
    order_items_page_size: int = 2
    faults: Faults = field(default_factory=Faults)
    sp_api_credentials: SpApiCredentials = DEMO_SP_API_CREDENTIALS
    sp_api_token_seconds: float = 3600.0  # access-token lifetime in simulated seconds (real: divided by time_scale)
    report_processing_seconds: float = 6.0  # simulated IN_QUEUE -> IN_PROGRESS -> DONE time (real: / time_scale)
    clock: Callable[[], datetime] | None = None

    def __post_init__(self) -> None:
        if not self.marketplace_ids:
            raise ValueError("SimulatorConfig.marketplace_ids must name at least one marketplace")
        if self.time_scale <= 0:
            raise ValueError("SimulatorConfig.time_scale must be > 0")
        if not 0.0 <= self.restated_share <= 1.0:
            raise ValueError("SimulatorConfig.restated_share must be between 0 and 1")
        if self.orders_per_day < 0:
            raise ValueError("SimulatorConfig.orders_per_day must be >= 0")
        if not 1 <= self.list_orders_page_size_cap <= 100 or self.order_items_page_size < 1:
            raise ValueError("page sizes must be >= 1 (ListOrders cap at most 100)")
        if self.sp_api_token_seconds <= 0 or self.report_processing_seconds < 0:
            raise ValueError("sp_api_token_seconds must be > 0 and report_processing_seconds >= 0")
        if self.faults.report_outcome not in (None, *REPORT_OUTCOMES):
            raise ValueError(f"Faults.report_outcome must be None or one of {', '.join(REPORT_OUTCOMES)}")
