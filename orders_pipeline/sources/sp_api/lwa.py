"""Login with Amazon: trade the app's refresh token for short-lived access tokens, cached until shortly before expiry.

Secrets (client secret, refresh token, access tokens) never appear in a message, repr or log line.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests

from orders_pipeline.sources.http import NETWORK_ERRORS, backoff_delay, is_loopback, read_capped, short_reason
from orders_pipeline.sources.sp_api.errors import (
    SpApiConfigurationError,
    SpApiConnectionError,
    SpApiResponseFormatError,
    SpApiServerError,
    error_from_response,
)

__all__ = ["DEFAULT_TOKEN_URL", "LwaCredentials", "LwaTokenClient", "check_https_url"]

log = logging.getLogger("orders_pipeline.sp_api")

DEFAULT_TOKEN_URL = "https://api.amazon.com/auth/o2/token"
_MAX_TOKEN_BODY = 64 * 1024


@dataclass(frozen=True)
class LwaCredentials:
    """The app's LWA credentials and the seller's refresh token; only the app id shows in repr."""

    app_id: str
    client_secret: str = field(repr=False)
    refresh_token: str = field(repr=False)

    def secrets(self) -> tuple[str, ...]:
        """The strings no message may contain."""
        return (self.client_secret, self.refresh_token)


def check_https_url(url: str, variable: str) -> str:
    """The URL without a trailing slash, refused unless https (plain http only to a loopback host)."""
    parts = urlsplit((url or "").strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SpApiConfigurationError(f"{variable} {url!r} is not an http(s) URL -> set {variable}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise SpApiConfigurationError(f"{variable} must be a plain base URL (no user info, query or fragment) -> fix {variable}")
    if parts.scheme == "http" and not is_loopback(parts.hostname.lower()):
        raise SpApiConfigurationError(
            f"{variable} {url!r} uses plain http to a non-loopback host; http is allowed only for 127.0.0.0/8, "
            f"::1 and localhost -> use https in {variable}"
        )
    return url.strip().rstrip("/")


class LwaTokenClient:
    """Access tokens for one app and seller: fetched on first use, cached, refreshed before `expires_in` runs out.

    A token is renewed `refresh_margin` seconds (at most a tenth of its lifetime) before it expires, and at once
    after `invalidate()` (the SP-API client calls it on a 403 "expired"). 5xx and network failures are retried
    with capped jittered backoff; `invalid_client` / `invalid_grant` raise `SpApiAuthError` naming the fix.
    """

    def __init__(
        self,
        credentials: LwaCredentials,
        token_url: str = DEFAULT_TOKEN_URL,
        *,
        session: requests.Session | None = None,
        timeout: float = 30.0,
        refresh_margin: float = 60.0,
        max_retries: int = 3,
        backoff_base: float = 0.5,
        backoff_max: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        missing = [
            name
            for name, value in (
                ("LWA_APP_ID", credentials.app_id),
                ("LWA_CLIENT_SECRET", credentials.client_secret),
                ("SP_API_REFRESH_TOKEN", credentials.refresh_token),
            )
            if not value or not str(value).strip()
        ]
        if missing:
            raise SpApiConfigurationError(f"missing SP-API credentials -> set {', '.join(missing)}")
        self.token_url = check_https_url(token_url, "LWA_TOKEN_URL")
        host = (urlsplit(self.token_url).hostname or "").lower()
        self._proxies = {"http": None, "https": None} if is_loopback(host) else None
        self._credentials = credentials
        self._session = session if session is not None else requests.Session()
        self._timeout = timeout
        self._refresh_margin = refresh_margin
        self._max_retries = max_retries
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0
        self.refreshes = 0

    def __repr__(self) -> str:
        return f"LwaTokenClient(token_url={self.token_url!r}, app_id={self._credentials.app_id!r})"

    def secrets(self) -> tuple[str, ...]:
        """Every secret this client knows (credentials and the current token), for redaction."""
        return (*self._credentials.secrets(), *((self._token,) if self._token else ()))

    def access_token(self) -> str:
        """A valid access token: the cached one, or a fresh one when it is (nearly) expired or invalidated."""
        with self._lock:
            if self._token is None or self._clock() >= self._renew_at:
                self._token, lifetime = self._fetch()
                self._renew_at = self._clock() + lifetime - min(self._refresh_margin, lifetime / 10)
                self.refreshes += 1
            return self._token

    def invalidate(self, token: str) -> None:
        """Forget `token` (the server called it expired) so the next `access_token()` fetches a new one."""
        with self._lock:
            if self._token == token:
                self._token = None

    def _fetch(self) -> tuple[str, float]:
        """POST the refresh-token grant; (access token, lifetime in seconds)."""
        form = {
            "grant_type": "refresh_token",
            "refresh_token": self._credentials.refresh_token,
            "client_id": self._credentials.app_id,
            "client_secret": self._credentials.client_secret,
        }
        failures = 0
        while True:
            try:
                response = self._session.post(
                    self.token_url, data=form, timeout=self._timeout, allow_redirects=False, proxies=self._proxies,
                    headers={"Accept": "application/json"}, stream=True,
                )
                body = read_capped(response, _MAX_TOKEN_BODY)
            except NETWORK_ERRORS as exc:
                if failures >= self._max_retries:
                    raise SpApiConnectionError(
                        f"cannot reach the LWA token endpoint {self.token_url} after {failures + 1} attempts "
                        f"({short_reason(exc)}) -> check LWA_TOKEN_URL and network access"
                    ) from None
                failures += 1
                self._backoff(failures)
                continue
            request_id = response.headers.get("x-amzn-RequestId")
            if body is None:
                raise SpApiResponseFormatError(
                    f"the LWA token answer (x-amzn-RequestId {request_id}) is larger than {_MAX_TOKEN_BODY:,} bytes; "
                    "refused -> check LWA_TOKEN_URL"
                )
            if response.status_code == 200:
                return self._read_token(body, request_id)
            error = error_from_response(
                response.status_code, body, "LWA token request", request_id, redact=self._credentials.secrets()
            )
            if isinstance(error, SpApiServerError) and failures < self._max_retries:
                failures += 1
                self._backoff(failures)
                continue
            raise error

    @staticmethod
    def _read_token(body: bytes, request_id: str | None) -> tuple[str, float]:
        where = f"the LWA token answer (x-amzn-RequestId {request_id})"
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            payload = None
        token = payload.get("access_token") if isinstance(payload, dict) else None
        lifetime = payload.get("expires_in") if isinstance(payload, dict) else None
        if not isinstance(token, str) or not token.strip():
            raise SpApiResponseFormatError(f"{where} has no access_token -> check LWA_TOKEN_URL")
        if not isinstance(lifetime, (int, float)) or isinstance(lifetime, bool) or lifetime <= 0:
            raise SpApiResponseFormatError(f"{where} has no positive expires_in -> check LWA_TOKEN_URL")
        return token.strip(), float(lifetime)

    def _backoff(self, attempt: int) -> None:
        delay = backoff_delay(attempt, self._backoff_base, self._backoff_max, self._rng)
        log.debug("LWA token request: retry %d in %.3fs", attempt, delay)
        self._sleep(delay)
