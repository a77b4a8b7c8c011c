"""The seller's product catalog: SKUs, ASINs, titles, prices and how demand for each moves over time."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import numpy as np

SKU_COUNT = 240
TREND_ANCHOR = date(2024, 1, 1).toordinal()

_FAMILIES = (
    ("KIT", "Kitchen", ("Chef's Knife", "Salt & Pepper Grinder Set", "Cast Iron Skillet", "Silicone Spatula", "Pour-Over Coffee Kettle")),
    ("OUT", "Outdoor", ("Camping Lantern", "Trekking Poles", "Insulated Bottle", "Hammock", "Dry Bag")),
    ("TOY", "Toys", ("Wooden Puzzle", "Building Blocks", "Plush Bear", "Kite", "Marble Run")),
    ("BTY", "Beauty", ("Face Serum", "Bamboo Hairbrush", "Lip Balm", "Clay Mask", "Nail Kit")),
    ("ELC", "Electronics", ("USB-C Cable", "Wireless Charger", "Bluetooth Speaker", "Phone Stand", "Power Bank")),
    ("HOM", "Home", ("Linen Pillow Cover", "Scented Candle", "Wall Clock", "Storage Basket", "Door Mat")),
    ("PET", "Pets", ("Dog Leash", "Cat Scratcher", "Pet Bowl", "Chew Toy", "Grooming Glove")),
    ("SPT", "Sports", ("Yoga Mat", "Jump Rope", "Resistance Bands", "Water Bottle", "Gym Towel")),
)
_VARIANTS = (
    ("Black", "BK"), ("White", "WH"), ("Blue", "BL"), ("Green", "GN"), ("Large", "LG"),
    ("Small", "SM"), ("2-Pack", "2P"), ("Deluxe", "DX"), ('12"', "12"), ("Travel Size", "TS"),
)
_ASIN_CHARS = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"))


@dataclass(frozen=True)
class Catalog:
    """All SKUs of the seller; index i of every array describes SKU i."""

    skus: tuple[str, ...]
    asins: tuple[str, ...]
    titles: tuple[str, ...]
    units_per_pack: np.ndarray
    usd_price_cents: np.ndarray
    base_weights: np.ndarray
    rising: tuple[int, ...]
    falling: tuple[int, ...]
    stepped: tuple[tuple[int, int, float], ...]

    def demand_multipliers(self, day_ordinal: int) -> np.ndarray:
        """How much each SKU's demand on that day deviates from its base popularity."""
        factors = np.ones(len(self.skus))
        days = day_ordinal - TREND_ANCHOR
        for sku in self.rising:
            factors[sku] = min(12.0, max(0.1, math.exp(0.025 * days)))
        for sku in self.falling:
            factors[sku] = min(12.0, max(0.05, math.exp(-0.025 * days)))
        for sku, step_day, factor in self.stepped:
            if day_ordinal >= step_day:
                factors[sku] = factor
        return factors

    def price_cents(self, sku: int, usd_rate: float) -> int:
        """Unit price in the marketplace currency, ending in .99 like a shelf price."""
        converted = int(self.usd_price_cents[sku]) * usd_rate
        return max(99, int(converted // 100) * 100 + 99)


@lru_cache(maxsize=8)
def build_catalog(seed: int) -> Catalog:
    """The deterministic catalog for a seed."""
    rng = np.random.default_rng([seed, 0xCA7A])
    skus, titles = [], []
    for i in range(SKU_COUNT):
        prefix, _, products = _FAMILIES[i % len(_FAMILIES)]
        product = products[(i // len(_FAMILIES)) % len(products)]
        variant, code = _VARIANTS[(i * 7 + i // 40) % len(_VARIANTS)]
        skus.append(f"{prefix}-{i:04d}-{code}")
        titles.append(f"{product} - {variant} (Model {100 + i})")
    asin_tail = rng.choice(_ASIN_CHARS, size=(SKU_COUNT, 8))
    asins = tuple("B0" + "".join(row) for row in asin_tail)
    prices = np.round(np.exp(rng.normal(3.2, 0.7, SKU_COUNT)) * 100).astype(np.int64).clip(500, 25_000)
    ranks = rng.permutation(SKU_COUNT) + 1
    weights = 1.0 / ranks.astype(float) ** 1.1
    movers = rng.choice(SKU_COUNT, size=8, replace=False)
    stepped = tuple(
        (int(sku), TREND_ANCHOR + int(rng.integers(20, 140)), float(factor))
        for sku, factor in zip(movers[6:], (6.0, 0.15))
    )
    return Catalog(
        skus=tuple(skus),
        asins=asins,
        titles=tuple(titles),
        units_per_pack=rng.choice([1, 1, 1, 2, 6, 12], size=SKU_COUNT),
        usd_price_cents=prices,
        base_weights=weights / weights.sum(),
        rising=tuple(int(s) for s in movers[:3]),
        falling=tuple(int(s) for s in movers[3:6]),
        stepped=stepped,
    )


def daily_sku_probabilities(catalog: Catalog, day_ordinal: int) -> np.ndarray:
    """Probability that an order line on that day is for each SKU."""
    weights = catalog.base_weights * catalog.demand_multipliers(day_ordinal)
    return weights / weights.sum()
