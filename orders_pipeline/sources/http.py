"""HTTP facts every API source shares: which hosts may use plain http, and how to describe network failures."""

from __future__ import annotations

import ipaddress
import random

import requests
import urllib3

NETWORK_ERRORS = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)
"""What `requests` raises when the network, not the server's answer, failed (retried with backoff)."""


def read_capped(response: requests.Response, limit: int) -> bytes | None:
    """A streamed response's body, or None (and the connection closed) once it passes `limit` bytes."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        response.close()
        return None
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(chunk_size=1 << 16):
        size += len(chunk)
        if size > limit:
            response.close()
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def is_loopback(host: str) -> bool:
    """True for localhost and 127.0.0.0/8 / ::1: the only hosts allowed plain http (the simulator)."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def never_connected(exc: BaseException) -> bool:
    """True when the request failed while opening the connection (nothing was sent)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if not isinstance(exc, requests.exceptions.ConnectionError):
        return False
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    return isinstance(reason, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError))


def short_reason(exc: BaseException) -> str:
    """A short, credential-free description of a network failure."""
    text = str(exc)
    for marker in ("Connection refused", "timed out", "Connection reset", "Name or service not known",
                   "nodename nor servname", "Temporary failure in name resolution", "Connection aborted",
                   "IncompleteRead", "Remote end closed connection"):
        if marker.lower() in text.lower():
            return f"{type(exc).__name__}: {marker}"
    return type(exc).__name__


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Seconds to wait before retry `attempt` (1-based): equal-jitter capped exponential backoff, every client's policy."""
    ceiling = min(cap, base * 2 ** (attempt - 1))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)
