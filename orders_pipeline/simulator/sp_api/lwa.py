"""Login with Amazon: refresh-token grants for the one demo app, and the access tokens they issue."""

from __future__ import annotations

import secrets
import threading
import time
from typing import Mapping

from ..config import SpApiCredentials
from .errors import token_expired, unauthorized

TOKEN_PREFIX = "Atza|"


class LwaError(Exception):
    """An OAuth error answer: `{"error", "error_description"}` with its HTTP status."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description

    def body(self) -> dict:
        """The OAuth JSON error."""
        return {"error": self.error, "error_description": self.description}


class TokenIssuer:
    """Exchanges the refresh token for access tokens that expire after `lifetime` simulated seconds."""

    def __init__(self, credentials: SpApiCredentials, lifetime: float, time_scale: float) -> None:
        self._credentials = credentials
        self._lifetime = lifetime
        self._real_lifetime = lifetime / time_scale
        self._expiry: dict[str, float] = {}  # token -> monotonic deadline
        self._lock = threading.Lock()

    def exchange(self, form: Mapping[str, str]) -> dict:
        """The token answer for a form-encoded grant, or LwaError as LWA words it."""
        grant_type = form.get("grant_type", "")
        if not grant_type:
            raise LwaError(400, "invalid_request", "The request is missing a required parameter : grant_type")
        if grant_type != "refresh_token":
            raise LwaError(400, "unsupported_grant_type", f"The grant type {grant_type} is not supported by this server")
        for name in ("client_id", "client_secret", "refresh_token"):
            if not form.get(name):
                raise LwaError(400, "invalid_request", f"The request is missing a required parameter : {name}")
        expected = self._credentials
        if form["client_id"] != expected.app_id or form["client_secret"] != expected.client_secret:
            raise LwaError(401, "invalid_client", "Client authentication failed")
        if form["refresh_token"] != expected.refresh_token:
            raise LwaError(400, "invalid_grant", "The request has an invalid grant parameter : refresh_token")
        token = TOKEN_PREFIX + secrets.token_urlsafe(48)
        with self._lock:
            self._expiry[token] = time.monotonic() + self._real_lifetime
        return {
            "access_token": token,
            "refresh_token": expected.refresh_token,
            "token_type": "bearer",
            "expires_in": int(self._lifetime),
        }

    def check(self, token: str | None) -> None:
        """Accept a live token; 403 Unauthorized for a missing, unknown or expired one."""
        with self._lock:
            deadline = self._expiry.get(token or "")
        if deadline is None:
            raise unauthorized()
        if time.monotonic() >= deadline:
            raise token_expired()

    def expire(self, token: str | None) -> None:
        """Make a token expire now (the expired-token fault)."""
        with self._lock:
            if token in self._expiry:
                self._expiry[token] = time.monotonic()
