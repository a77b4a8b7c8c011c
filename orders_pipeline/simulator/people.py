"""Synthetic buyers and shipping addresses (personal data the pipeline must learn to drop)."""

from __future__ import annotations

from dataclasses import dataclass

_FIRST = ("Ana", "Ben", "Chloé", "David", "Emma", "Farid", "Grace", "Hiro", "Ines", "Jack", "Keira", "Liam",
          "Maya", "Noah", "Olivia", "Pablo", "Quinn", "Ravi", "Sofia", "Tom", "Uma", "Victor", "Wen", "Zoë")
_LAST = ("Smith", "O'Brien", "García", "Nguyen", "Müller", "Johnson", "Patel", "Kim", "Rossi", "Brown",
         "Dubois", "Silva", "Cohen", "Tanaka", "Walker", "Lopez", "Taylor", "Novak", "Hughes", "Martin")
_STREETS = ("Main St.", "Oak Avenue", "Maple Dr.", "Smith & Sons Way", "High Street", "Park Road",
            "Cedar Lane", "Rue Sainte-Catherine", "Station Rd.", "Lakeview Blvd.")
_CITIES = {
    "US": (("Seattle", "WA", "98103"), ("Austin", "TX", "78701"), ("Brooklyn", "NY", "11201"),
           ("Denver", "CO", "80202"), ("Miami", "FL", "33101"), ("Chicago", "IL", "60601"),
           ("San Jose", "CA", "95112"), ("Portland", "OR", "97201"), ("Columbus", "OH", "43004")),
    "CA": (("Toronto", "ON", "M5V 2T6"), ("Vancouver", "BC", "V6B 1A1"), ("Montréal", "QC", "H2X 1Y4"),
           ("Calgary", "AB", "T2P 1J9"), ("Halifax", "NS", "B3H 1A1")),
    "GB": (("London", "Greater London", "SW1A 1AA"), ("Manchester", "Greater Manchester", "M1 1AE"),
           ("Edinburgh", "Scotland", "EH1 1YZ"), ("Bristol", "Bristol", "BS1 4DJ"), ("Leeds", "West Yorkshire", "LS1 1UR")),
}
_EMAIL_DOMAINS = {"US": "marketplace.amazon.com", "CA": "marketplace.amazon.ca", "GB": "marketplace.amazon.co.uk"}


@dataclass(frozen=True)
class Buyer:
    """A buyer and where the order ships to."""

    name: str
    email: str
    address_line1: str
    city: str
    state_or_region: str
    postal_code: str
    country_code: str
    phone: str
    address_type: str | None


def buyer(seed: int, country: str) -> Buyer:
    """The buyer drawn from a 62-bit seed, living in `country`."""
    name = f"{_FIRST[seed % len(_FIRST)]} {_LAST[(seed >> 8) % len(_LAST)]}"
    cities = _CITIES.get(country, _CITIES["US"])
    city, region, postal = cities[(seed >> 16) % len(cities)]
    return Buyer(
        name=name,
        email=f"{(seed * 0x9E3779B97F4A7C15 >> 20) % 16**12:012x}@{_EMAIL_DOMAINS.get(country, 'marketplace.amazon.com')}",
        address_line1=f"{(seed >> 40) % 9000 + 10} {_STREETS[(seed >> 20) % len(_STREETS)]}",
        city=city,
        state_or_region=region,
        postal_code=postal,
        country_code=country if country in _CITIES else "US",
        phone=f"+1 555-{(seed >> 30) % 900 + 100}-{(seed >> 50) % 9000 + 1000}",
        address_type=("Residential", "Commercial")[(seed >> 60) % 2] if country == "US" else None,
    )
