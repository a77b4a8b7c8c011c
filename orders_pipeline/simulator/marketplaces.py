"""Per-marketplace facts: country, currency, sales channel, tax rate and exchange rate."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Marketplace:
    """What an order placed in one marketplace looks like."""

    marketplace_id: str
    country: str
    currency: str
    sales_channel: str
    tax_basis_points: int
    usd_rate: float


_KNOWN = {
    m.marketplace_id: m
    for m in (
        Marketplace("ATVPDKIKX0DER", "US", "USD", "Amazon.com", 700, 1.0),
        Marketplace("A2EUQ1WTGCTBG2", "CA", "CAD", "Amazon.ca", 1300, 1.35),
        Marketplace("A1F83G8C2ARO7P", "GB", "GBP", "Amazon.co.uk", 2000, 0.79),
        Marketplace("A1AM78C64UM0Y8", "MX", "MXN", "Amazon.com.mx", 1600, 17.0),
        Marketplace("A1PA6795UKMFR9", "DE", "EUR", "Amazon.de", 1900, 0.92),
        Marketplace("A13V1IB3VIYZZH", "FR", "EUR", "Amazon.fr", 2000, 0.92),
        Marketplace("APJ6JRA9NG5V4", "IT", "EUR", "Amazon.it", 2200, 0.92),
        Marketplace("A1RKKUPIHCS9HS", "ES", "EUR", "Amazon.es", 2100, 0.92),
        Marketplace("A1VC38T7YXB528", "JP", "JPY", "Amazon.co.jp", 1000, 150.0),
    )
}


def marketplace(marketplace_id: str) -> Marketplace:
    """Facts for a marketplace id; unknown ids behave like a US-dollar marketplace."""
    known = _KNOWN.get(marketplace_id)
    if known is not None:
        return known
    return Marketplace(marketplace_id, "US", "USD", "Amazon.com", 700, 1.0)
