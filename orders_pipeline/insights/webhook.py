"""POST a JSON alert to a webhook with a bounded retry; never raises, never reveals the URL's path or query."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

WEBHOOK_URL_ENV = "ORDERS_ALERT_WEBHOOK_URL"
ATTEMPTS = 3
TIMEOUT_SECONDS = 5.0
BACKOFF_SECONDS = 1.0
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True)
class Delivery:
    """How a post went: delivered or not, after how many attempts, and the last problem seen."""

    delivered: bool
    attempts: int
    target: str
    problem: str = ""

    def describe(self) -> str:
        """One line for logs and metadata."""
        if self.delivered:
            return f"delivered to {self.target} (attempt {self.attempts})"
        return f"NOT delivered to {self.target} after {self.attempts} attempts: {self.problem}"


def redact_url(url: str) -> str:
    """Scheme, host and port only: webhook paths and queries usually carry the secret."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/…"


def post_json(
    url: str,
    payload: dict,
    *,
    attempts: int = ATTEMPTS,
    timeout: float = TIMEOUT_SECONDS,
    backoff: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Delivery:
    """POST `payload`; retry connection errors, 429 and 5xx up to `attempts` times with doubling waits."""
    backoff = BACKOFF_SECONDS if backoff is None else backoff
    target = redact_url(url)
    proxies = {"http": None, "https": None} if urlsplit(url).hostname in _LOOPBACK else None
    problem = ""
    for attempt in range(1, attempts + 1):
        try:
            response = requests.post(url, json=payload, timeout=timeout, proxies=proxies)
        except requests.RequestException as error:
            problem = type(error).__name__
        else:
            if response.status_code < 300:
                return Delivery(True, attempt, target)
            problem = f"HTTP {response.status_code}"
            if response.status_code < 500 and response.status_code != 429:
                return Delivery(False, attempt, target, problem)
        if attempt < attempts:
            sleep(backoff * 2 ** (attempt - 1))
    return Delivery(False, attempts, target, problem)
