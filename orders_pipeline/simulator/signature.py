"""Signature Version 2 verification (HmacSHA256 / HmacSHA1), written independently of the client."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Mapping
from urllib.parse import quote

_DIGESTS = {"HmacSHA256": hashlib.sha256, "HmacSHA1": hashlib.sha1}
_DEFAULT_PORTS = (":80", ":443")


def canonical_query(params: Mapping[str, str]) -> str:
    """Parameters sorted by name in byte order, RFC 3986-encoded, joined by & (Signature excluded)."""
    pairs = sorted((k.encode(), k, v) for k, v in params.items() if k != "Signature")
    return "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for _, k, v in pairs)


def string_to_sign(method: str, host: str, path: str, params: Mapping[str, str]) -> str:
    """METHOD, lowercase host, path and canonical query, one per line."""
    return "\n".join((method.upper(), host.lower(), path or "/", canonical_query(params)))


def compute_signature(secret: str, text: str, signature_method: str = "HmacSHA256") -> str:
    """Base64 HMAC of `text` under `secret`."""
    digest = hmac.new(secret.encode(), text.encode(), _DIGESTS[signature_method]).digest()
    return base64.b64encode(digest).decode()


def signature_matches(secret: str, method: str, host_header: str, path: str, params: Mapping[str, str]) -> bool:
    """True if params['Signature'] signs this request (host as sent, or without a default port)."""
    hosts = {host_header.lower()}
    for port in _DEFAULT_PORTS:
        if host_header.endswith(port):
            hosts.add(host_header[: -len(port)].lower())
    given = params.get("Signature", "")
    return any(
        hmac.compare_digest(
            compute_signature(secret, string_to_sign(method, host, path, params), params["SignatureMethod"]),
            given,
        )
        for host in hosts
    )


def is_supported_method(signature_method: str) -> bool:
    """HmacSHA256 and HmacSHA1 are accepted."""
    return signature_method in _DIGESTS
