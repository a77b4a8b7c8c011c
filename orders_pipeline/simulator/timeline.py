"""One day of orders as numpy columns: who bought what, and when each order changed status."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone

import numpy as np

from .catalog import Catalog, daily_sku_probabilities
from .ids import MAX_ITEMS_PER_ORDER, MAX_ORDERS_PER_DAY

PENDING, UNSHIPPED, PARTIALLY_SHIPPED, SHIPPED, CANCELED = range(5)
STATUS_NAMES = ("Pending", "Unshipped", "PartiallyShipped", "Shipped", "Canceled")
NO_EVENT = np.iinfo(np.int64).max
MAX_EVENTS = 4
MAX_ORDER_LIFETIME_DAYS = 4  # no order changes more than this long after its purchase
SHIP_CATEGORIES = ("Standard", "Expedited", "SecondDay", "NextDay", "FreeEconomy")
MESSY_KINDS = 5  # 1 bad year, 2 %3A PurchaseDate, 3 'Standard ', 4 'Standard\n   ', 5 %3A LatestShipDate

_WEEKDAY_SHAPE = np.array([0.95, 0.9, 0.92, 0.98, 1.05, 1.12, 1.08])
_WEEKDAY_SHAPE = _WEEKDAY_SHAPE / _WEEKDAY_SHAPE.mean()
_HOUR_WEIGHTS = np.array(
    [2, 1.5, 1, 0.8, 0.7, 0.8, 1.2, 2, 3, 3.5, 3.8, 4, 4.2, 4, 3.8, 3.8, 4, 4.4, 5, 5.5, 5.8, 5, 4, 3]
)
_HOUR_WEIGHTS = _HOUR_WEIGHTS / _HOUR_WEIGHTS.sum()
_DAY = 86_400


@dataclass(frozen=True)
class DayOrders:
    """Orders purchased on one UTC day; row i of each order column is order i, items are CSR-packed."""

    day_ordinal: int
    purchase: np.ndarray  # int64 epoch seconds, ascending
    marketplace: np.ndarray  # index into the configured marketplace ids
    non_amazon: np.ndarray
    afn: np.ndarray
    ship_category: np.ndarray
    prime: np.ndarray
    business: np.ndarray
    premium: np.ndarray
    replacement: np.ndarray
    buyer: np.ndarray  # int64 seed for names, addresses and emails
    messy: np.ndarray  # 0 or a MESSY kind
    event_times: np.ndarray  # (n, MAX_EVENTS) epoch seconds, NO_EVENT after the last event
    event_status: np.ndarray  # (n, MAX_EVENTS) status codes
    item_start: np.ndarray  # order i owns items item_start[i]:item_start[i+1]
    item_sku: np.ndarray
    item_quantity: np.ndarray
    item_promotion: np.ndarray
    item_gift: np.ndarray

    def __len__(self) -> int:
        return len(self.purchase)

    def versions_at(self, now: float) -> np.ndarray:
        """Index of the latest event at or before `now` for every order (-1: not purchased yet)."""
        return (self.event_times <= now).sum(axis=1) - 1


def day_start_epoch(day_ordinal: int) -> int:
    """Epoch seconds of 00:00 UTC of a day."""
    day = date.fromordinal(day_ordinal)
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp())


def order_count(seed: int, day_ordinal: int, orders_per_day: int) -> int:
    """How many orders are purchased on a day: the average shaped by weekday, +-30%."""
    rng = np.random.default_rng([seed, day_ordinal, 1])
    shape = _WEEKDAY_SHAPE[date.fromordinal(day_ordinal).weekday()]
    count = round(orders_per_day * shape * rng.uniform(0.7, 1.3))
    return int(min(max(count, 0), MAX_ORDERS_PER_DAY - 1))


def generate_day(
    seed: int, day_ordinal: int, orders_per_day: int, marketplace_count: int, catalog: Catalog, restated_share: float = 0.0
) -> DayOrders:
    """Generate (vectorised, deterministic in seed and day) every order purchased on a day."""
    n = order_count(seed, day_ordinal, orders_per_day)
    rng = np.random.default_rng([seed, day_ordinal, 2])
    start = day_start_epoch(day_ordinal)
    hours = rng.choice(24, size=n, p=_HOUR_WEIGHTS)
    purchase = np.sort(start + hours * 3600 + rng.integers(0, 3600, size=n)).astype(np.int64)

    mkt_weights = np.full(marketplace_count, 0.35 / max(marketplace_count - 1, 1))
    mkt_weights[0] = 0.65 if marketplace_count > 1 else 1.0
    marketplace = rng.choice(marketplace_count, size=n, p=mkt_weights / mkt_weights.sum()).astype(np.int16)
    afn = rng.random(n) < 0.55
    ship_category = rng.choice(len(SHIP_CATEGORIES), size=n, p=[0.7, 0.14, 0.08, 0.06, 0.02]).astype(np.int8)

    item_count = rng.choice(np.arange(1, MAX_ITEMS_PER_ORDER + 1), size=n, p=[0.62, 0.24, 0.09, 0.05])
    item_start = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(item_count, out=item_start[1:])
    event_times, event_status = _timelines(rng, purchase, afn, item_count)
    if restated_share:
        _restate_unshipped(np.random.default_rng([seed, day_ordinal, 3]), event_times, event_status, restated_share)

    total_items = int(item_start[-1])
    item_sku = rng.choice(len(catalog.skus), size=total_items, p=daily_sku_probabilities(catalog, day_ordinal))
    _avoid_repeated_skus(item_sku, item_start, len(catalog.skus))
    return DayOrders(
        day_ordinal=day_ordinal,
        purchase=purchase,
        marketplace=marketplace,
        non_amazon=rng.random(n) < 0.10,
        afn=afn,
        ship_category=ship_category,
        prime=afn & (rng.random(n) < 0.6),
        business=rng.random(n) < 0.05,
        premium=(ship_category >= 2) & (rng.random(n) < 0.3),
        replacement=rng.random(n) < 0.01,
        buyer=rng.integers(0, 2**62, size=n),
        messy=_messy_kinds(rng.random(n) < 0.04),
        event_times=event_times,
        event_status=event_status,
        item_start=item_start,
        item_sku=item_sku.astype(np.int32),
        item_quantity=rng.choice([1, 2, 3], size=total_items, p=[0.85, 0.1, 0.05]).astype(np.int16),
        item_promotion=rng.random(total_items) < 0.08,
        item_gift=rng.random(total_items) < 0.03,
    )


def _timelines(
    rng: np.random.Generator, purchase: np.ndarray, afn: np.ndarray, item_count: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Status history of each order: Pending -> Unshipped -> (PartiallyShipped ->) Shipped, or a detour."""
    n = len(purchase)
    fate = rng.choice(5, size=n, p=[0.915, 0.02, 0.02, 0.015, 0.03])  # normal, cancel early/late, stuck P/U
    unshipped = purchase + 300 + np.minimum(rng.exponential(5400, size=n), 10 * 3600).astype(np.int64)
    shipped = np.maximum(purchase + rng.integers(_DAY, 3 * _DAY, size=n), unshipped + 600)
    partial_at = unshipped + ((shipped - unshipped) * rng.uniform(0.3, 0.7, size=n)).astype(np.int64)
    cancel_early = purchase + rng.integers(600, 12 * 3600, size=n)
    cancel_late = unshipped + rng.integers(3600, 20 * 3600, size=n)
    partial = (fate == 0) & ~afn & (item_count >= 2) & (rng.random(n) < 0.25)

    times = np.full((n, MAX_EVENTS), NO_EVENT, dtype=np.int64)
    status = np.full((n, MAX_EVENTS), PENDING, dtype=np.int8)
    times[:, 0] = purchase
    reaches_unshipped = (fate == 0) | (fate == 2) | (fate == 4)
    times[reaches_unshipped, 1] = unshipped[reaches_unshipped]
    status[reaches_unshipped, 1] = UNSHIPPED

    plain = (fate == 0) & ~partial
    times[plain, 2], status[plain, 2] = shipped[plain], SHIPPED
    times[partial, 2], status[partial, 2] = partial_at[partial], PARTIALLY_SHIPPED
    times[partial, 3], status[partial, 3] = shipped[partial], SHIPPED
    early = fate == 1
    times[early, 1], status[early, 1] = cancel_early[early], CANCELED
    late = fate == 2
    times[late, 2], status[late, 2] = cancel_late[late], CANCELED
    return times, status


def _restate_unshipped(rng: np.random.Generator, times: np.ndarray, status: np.ndarray, share: float) -> None:
    """Give a share of Unshipped orders a second Unshipped version (e.g. a restated ship date), in place.

    The order changes without changing status: for one that ships later the new version comes halfway to its
    shipment, for one stuck in Unshipped 6-30 hours after it became Unshipped. Its own generator, so every other
    value of the day stays as it was without restatements.
    """
    chosen = (status[:, 1] == UNSHIPPED) & (times[:, 3] == NO_EVENT) & (rng.random(len(times)) < share)
    ships = chosen & (times[:, 2] != NO_EVENT)
    stays = chosen & (times[:, 2] == NO_EVENT)
    times[ships, 3], status[ships, 3] = times[ships, 2], status[ships, 2]
    times[ships, 2] = times[ships, 1] + (times[ships, 3] - times[ships, 1]) // 2
    times[stays, 2] = times[stays, 1] + rng.integers(6 * 3600, 30 * 3600, size=int(stays.sum()))
    status[chosen, 2] = UNSHIPPED


def _avoid_repeated_skus(item_sku: np.ndarray, item_start: np.ndarray, sku_count: int) -> None:
    """Shift a line's SKU when it repeats an earlier line of the same order (in place)."""
    line = np.arange(len(item_sku)) - np.repeat(item_start[:-1], np.diff(item_start))
    for _ in range(MAX_ITEMS_PER_ORDER):
        clash = np.zeros(len(item_sku), dtype=bool)
        for back in range(1, MAX_ITEMS_PER_ORDER):
            earlier = np.roll(item_sku, back)
            clash |= (line >= back) & (item_sku == earlier)
        if not clash.any():
            return
        item_sku[clash] = (item_sku[clash] + 1) % sku_count


def _messy_kinds(is_messy: np.ndarray) -> np.ndarray:
    """The messy orders take the kinds in turn, so every kind shows up in any day with a handful of them."""
    return np.where(is_messy, np.cumsum(is_messy) % MESSY_KINDS + 1, 0).astype(np.int8)
