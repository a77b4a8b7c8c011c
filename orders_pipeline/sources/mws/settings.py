"""MWS settings checked before any call: credentials, endpoint and marketplaces."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from orders_pipeline.sources.http import is_loopback
from orders_pipeline.sources.mws.errors import MwsConfigurationError
from orders_pipeline.sources.mws.signing import host_header

MAX_MARKETPLACES = 50


@dataclass(frozen=True)
class MwsCredentials:
    """The seller/developer credentials; only the seller id shows in repr."""

    access_key_id: str = field(repr=False)
    secret_key: str = field(repr=False)
    seller_id: str
    auth_token: str | None = field(default=None, repr=False)


def validate_endpoint(endpoint: str, api_path: str) -> tuple[str, str, str]:
    """The API URL, Host header and path of a base endpoint; anything unsafe or malformed is a one-line error."""
    if not endpoint or not isinstance(endpoint, str) or not endpoint.strip():
        raise MwsConfigurationError(
            "MWS endpoint is empty -> set MWS_ENDPOINT, e.g. https://mws.amazonservices.com"
        )
    endpoint = endpoint.strip()
    parts = urlsplit(endpoint)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.netloc:
        raise MwsConfigurationError(
            f"MWS endpoint {endpoint!r} is not an http(s) URL -> set MWS_ENDPOINT, "
            "e.g. https://mws.amazonservices.com"
        )
    if parts.username or parts.password or "@" in parts.netloc:
        raise MwsConfigurationError(
            "MWS endpoint contains user info (user:password@); credentials go in MWS_ACCESS_KEY_ID / "
            "MWS_SECRET_KEY -> fix MWS_ENDPOINT"
        )
    try:
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise MwsConfigurationError("MWS endpoint has an invalid port -> fix MWS_ENDPOINT") from None
    if not host:
        raise MwsConfigurationError(f"MWS endpoint {endpoint!r} has no host -> fix MWS_ENDPOINT")
    if parts.query or parts.fragment:
        raise MwsConfigurationError(
            f"MWS endpoint {endpoint!r} must be a base URL without query or fragment -> fix MWS_ENDPOINT"
        )
    if scheme == "http" and not is_loopback(host.lower()):
        raise MwsConfigurationError(
            f"MWS endpoint {endpoint!r} uses plain http to a non-loopback host; http is allowed only for "
            "127.0.0.0/8, ::1 and localhost -> use https in MWS_ENDPOINT"
        )
    base = f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}"
    url = base + api_path
    return url, host_header(url), urlsplit(url).path

def validate_credentials(credentials: MwsCredentials) -> MwsCredentials:
    """The credentials, or a one-line error naming the missing variables (a blank auth token counts as none)."""
    missing = [
        env
        for env, value in (
            ("MWS_ACCESS_KEY_ID", credentials.access_key_id),
            ("MWS_SECRET_KEY", credentials.secret_key),
            ("MWS_SELLER_ID", credentials.seller_id),
        )
        if not value or not str(value).strip()
    ]
    if missing:
        raise MwsConfigurationError(f"missing MWS credentials -> set {', '.join(missing)}")
    if credentials.auth_token is not None and not str(credentials.auth_token).strip():
        credentials = replace(credentials, auth_token=None)
    return credentials

def validate_marketplaces(marketplace_ids: Sequence[str] | str) -> tuple[str, ...]:
    """Distinct marketplace ids (1 to 50), or a one-line error naming MWS_MARKETPLACE_IDS."""
    if isinstance(marketplace_ids, str):
        marketplace_ids = marketplace_ids.split(",")
    ids: list[str] = []
    for raw in marketplace_ids or ():
        mid = str(raw).strip()
        if mid and mid not in ids:
            ids.append(mid)
    if not ids:
        raise MwsConfigurationError(
            "no marketplace id given -> set MWS_MARKETPLACE_IDS (comma-separated, e.g. ATVPDKIKX0DER)"
        )
    if len(ids) > MAX_MARKETPLACES:
        raise MwsConfigurationError(
            f"{len(ids)} marketplace ids given, MWS accepts at most {MAX_MARKETPLACES} -> shorten MWS_MARKETPLACE_IDS"
        )
    return tuple(ids)
