"""MWS Signature Version 2 (HmacSHA256): canonical query string, string to sign, signature.

Rules (reference/mws_protocol.md §5.2): parameters sorted by name in natural byte order of their UTF-8
encoding, names and values percent-encoded per RFC 3986 (unreserved ``A-Za-z0-9-_.~`` kept, space as
``%20``, uppercase hex), ``Signature`` excluded, string to sign = verb, lowercase Host header value,
path, canonical query, joined by ``\\n``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime, timezone
from urllib.parse import quote, urlsplit

__all__ = [
    "SIGNATURE_METHOD",
    "SIGNATURE_VERSION",
    "percent_encode",
    "canonical_query",
    "string_to_sign",
    "sign",
    "host_header",
    "format_timestamp",
    "signed_params",
]

SIGNATURE_METHOD = "HmacSHA256"
SIGNATURE_VERSION = "2"
_UNRESERVED = "-_.~"


def percent_encode(value: str) -> str:
    """RFC 3986 percent-encoding of a UTF-8 string: unreserved characters kept, space as %20."""
    return quote(value, safe=_UNRESERVED)


def canonical_query(params: Mapping[str, str]) -> str:
    """The canonicalized query string: byte-order sorted ``name=value`` pairs joined by ``&``.

    ``Signature`` is excluded if present.
    """
    items = [(str(k), "" if v is None else str(v)) for k, v in params.items() if k != "Signature"]
    items.sort(key=lambda kv: kv[0].encode("utf-8"))
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in items)


def string_to_sign(method: str, host: str, path: str, params: Mapping[str, str]) -> str:
    """``VERB\\nhost\\npath\\ncanonical-query`` with the host lower-cased and an empty path as ``/``."""
    return "\n".join([method.upper(), host.lower(), path or "/", canonical_query(params)])


def sign(secret_key: str, string_to_sign: str) -> str:
    """Base64 of HMAC-SHA256(secret_key, string_to_sign)."""
    digest = hmac.new(secret_key.encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def host_header(url: str) -> str:
    """The Host header value ``requests`` sends for ``url``: lowercase host, port only when non-default.

    IPv6 literals keep their brackets (``[::1]:8123``).
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = parts.port
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    if port is not None and port != default:
        return f"{host}:{port}"
    return host


def format_timestamp(moment: datetime) -> str:
    """ISO 8601 UTC with milliseconds and ``Z``: ``2017-02-05T18:12:21.687Z``."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def signed_params(
    params: Mapping[str, str],
    *,
    access_key_id: str,
    secret_key: str,
    seller_id: str,
    auth_token: str | None,
    version: str,
    method: str,
    host: str,
    path: str,
    timestamp: datetime | None = None,
) -> dict[str, str]:
    """Operation parameters plus the common ones (AWSAccessKeyId, SellerId, MWSAuthToken if set,
    SignatureMethod, SignatureVersion, Timestamp, Version) and the ``Signature`` over all of them."""
    out: dict[str, str] = {k: str(v) for k, v in params.items()}
    out["AWSAccessKeyId"] = access_key_id
    out["SellerId"] = seller_id
    if auth_token:
        out["MWSAuthToken"] = auth_token
    out["SignatureMethod"] = SIGNATURE_METHOD
    out["SignatureVersion"] = SIGNATURE_VERSION
    out["Timestamp"] = format_timestamp(timestamp or datetime.now(timezone.utc))
    out["Version"] = version
    out.pop("Signature", None)
    out["Signature"] = sign(secret_key, string_to_sign(method, host, path, out))
    return out
