"""The order book: which order versions a request can see, and each version as a plain record."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date
from typing import Iterable, Iterator

import numpy as np

from .catalog import build_catalog
from .ids import order_id, order_item_id, parse_order_id
from .marketplaces import Marketplace, marketplace
from .people import Buyer, buyer
from .timeline import (
    CANCELED,
    MAX_ORDER_LIFETIME_DAYS,
    PARTIALLY_SHIPPED,
    PENDING,
    SHIP_CATEGORIES,
    SHIPPED,
    STATUS_NAMES,
    UNSHIPPED,
    DayOrders,
    generate_day,
)

FIRST_SALES_DAY = date(2015, 1, 1).toordinal()  # the seller has no orders before this day
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_DAY = 86_400
_CACHED_DAYS = 96
_SHIPPING_USD_CENTS = {"Standard": 499, "Expedited": 999, "SecondDay": 1299, "NextDay": 1999, "FreeEconomy": 0}
_SERVICE_LEVEL_PREFIX = {"Standard": "Std", "Expedited": "Exp", "SecondDay": "Second", "NextDay": "Next", "FreeEconomy": "Econ"}


@dataclass(slots=True)
class ItemRecord:
    """One order line as a given order version shows it; money in minor units, None while Pending."""

    order_item_id: str
    asin: str
    seller_sku: str
    title: str
    quantity_ordered: int
    quantity_shipped: int
    number_of_items: int
    currency: str
    item_price: int | None
    shipping_price: int | None
    item_tax: int | None
    shipping_tax: int | None
    shipping_discount: int | None
    promotion_discount: int | None
    promotion_ids: tuple[str, ...]
    is_gift: bool
    marketplace_facilitator: bool


@dataclass(slots=True)
class OrderRecord:
    """One version of an order; timestamps in epoch seconds, money in minor units."""

    amazon_order_id: str
    purchase_date: int
    last_update_date: int
    order_status: str
    fulfillment_channel: str
    sales_channel: str
    ship_service_level: str
    shipment_service_level_category: str
    buyer: Buyer | None
    order_total: int | None
    currency: str
    number_of_items_shipped: int
    number_of_items_unshipped: int
    payment_method_details: tuple[str, ...]
    replaced_order_id: str | None
    marketplace_id: str
    earliest_ship_date: int
    latest_ship_date: int
    earliest_delivery_date: int | None
    latest_delivery_date: int | None
    is_business_order: bool
    purchase_order_number: str | None
    is_prime: bool
    is_premium_order: bool
    messy_kind: int
    items: list[ItemRecord]


@dataclass(frozen=True)
class OrderRefs:
    """Order versions as parallel arrays (day ordinal, index within the day, version index)."""

    day: np.ndarray
    index: np.ndarray
    version: np.ndarray

    def __len__(self) -> int:
        return len(self.day)

    def __getitem__(self, window: slice) -> "OrderRefs":
        return OrderRefs(self.day[window], self.index[window], self.version[window])

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        return zip(self.day.tolist(), self.index.tolist(), self.version.tolist())


class OrderStore:
    """Deterministic orders for every day, generated lazily and cached per day."""

    def __init__(
        self, seed: int, orders_per_day: int, marketplace_ids: tuple[str, ...], restated_share: float = 0.0
    ) -> None:
        self._seed = seed
        self._orders_per_day = orders_per_day
        self._restated_share = restated_share
        self._marketplaces = tuple(marketplace(m) for m in marketplace_ids)
        self._catalog = build_catalog(seed)
        self._days: OrderedDict[int, DayOrders] = OrderedDict()
        self._lock = threading.Lock()

    def day(self, day_ordinal: int) -> DayOrders:
        """All orders purchased on a day (cached)."""
        with self._lock:
            cached = self._days.get(day_ordinal)
            if cached is not None:
                self._days.move_to_end(day_ordinal)
                return cached
        generated = generate_day(
            self._seed, day_ordinal, self._orders_per_day, len(self._marketplaces), self._catalog, self._restated_share
        )
        with self._lock:
            self._days[day_ordinal] = generated
            while len(self._days) > _CACHED_DAYS:
                self._days.popitem(last=False)
        return generated

    def select(
        self,
        by_purchase_date: bool,
        after: float,
        before: float,
        now: float,
        marketplace_ids: Iterable[str] | None = None,
        statuses: Iterable[str] | None = None,
        fulfillment_channels: Iterable[str] | None = None,
    ) -> OrderRefs:
        """Current versions (as of `now`) whose LastUpdateDate (or PurchaseDate) is in [after, before), in that order."""
        before = min(before, now)
        first_day = _epoch_to_ordinal(after) - (0 if by_purchase_date else MAX_ORDER_LIFETIME_DAYS)
        last_day = _epoch_to_ordinal(before - 1e-6)
        wanted_mkts = None if marketplace_ids is None else {m for m in marketplace_ids}
        mkt_allowed = np.array(
            [wanted_mkts is None or m.marketplace_id in wanted_mkts for m in self._marketplaces]
        )
        status_allowed = np.array([statuses is None or s in set(statuses) for s in STATUS_NAMES])
        channels = None if fulfillment_channels is None else set(fulfillment_channels)
        parts: list[tuple[np.ndarray, ...]] = []
        for ordinal in range(max(first_day, FIRST_SALES_DAY), last_day + 1):
            orders = self.day(ordinal)
            if len(orders) == 0:
                continue
            versions = orders.versions_at(now)
            rows = np.arange(len(orders))
            safe_versions = np.maximum(versions, 0)
            key = orders.purchase if by_purchase_date else orders.event_times[rows, safe_versions]
            mask = (versions >= 0) & (key >= after) & (key < before) & mkt_allowed[orders.marketplace]
            mask &= status_allowed[orders.event_status[rows, safe_versions]]
            if channels is not None:
                mask &= (orders.afn & ("AFN" in channels)) | (~orders.afn & ("MFN" in channels))
            hit = np.nonzero(mask)[0]
            parts.append((key[hit], np.full(len(hit), ordinal, dtype=np.int32), hit.astype(np.int32), versions[hit].astype(np.int8)))
        if not parts:
            empty = np.zeros(0, dtype=np.int32)
            return OrderRefs(empty, empty, empty.astype(np.int8))
        key, days, index, version = (np.concatenate(column) for column in zip(*parts))
        order = np.lexsort((index, days, key))
        return OrderRefs(days[order], index[order], version[order])

    def locate(self, amazon_order_id: str, now: float) -> tuple[int, int, int] | None:
        """(day, index, current version) of an order that exists at `now`, else None."""
        decoded = parse_order_id(self._seed, amazon_order_id)
        if decoded is None:
            return None
        day_ordinal, index = decoded
        if not FIRST_SALES_DAY <= day_ordinal <= _epoch_to_ordinal(now):
            return None
        orders = self.day(day_ordinal)
        if index >= len(orders):
            return None
        version = int(orders.versions_at(now)[index])
        return None if version < 0 else (day_ordinal, index, version)

    def record(self, day_ordinal: int, index: int, version: int) -> OrderRecord:
        """The order as it looked at its `version`-th status change."""
        orders = self.day(day_ordinal)
        mkt = self._marketplaces[int(orders.marketplace[index])]
        status_code = int(orders.event_status[index, version])
        reached_unshipped = bool((orders.event_status[index, : version + 1] == UNSHIPPED).any())
        priced = status_code != PENDING and reached_unshipped
        afn = bool(orders.afn[index])
        category = SHIP_CATEGORIES[int(orders.ship_category[index])]
        purchase = int(orders.purchase[index])
        buyer_seed = int(orders.buyer[index])
        items = self._items(orders, index, status_code, priced, mkt, category, afn)
        latest_ship = (purchase // _DAY + (1 if category in ("NextDay", "SecondDay") else 2)) * _DAY + 7 * 3600 + 59 * 60 + 59
        delivers = not afn and priced and status_code != CANCELED
        shipped = sum(i.quantity_shipped for i in items)
        unshipped = 0 if status_code == CANCELED else sum(i.quantity_ordered for i in items) - shipped
        return OrderRecord(
            amazon_order_id=order_id(self._seed, day_ordinal, index),
            purchase_date=purchase,
            last_update_date=int(orders.event_times[index, version]),
            order_status=STATUS_NAMES[status_code],
            fulfillment_channel="AFN" if afn else "MFN",
            sales_channel="Non-Amazon" if orders.non_amazon[index] else mkt.sales_channel,
            ship_service_level=f"{_SERVICE_LEVEL_PREFIX[category]} {mkt.country} D2D Dom",
            shipment_service_level_category=category,
            buyer=buyer(buyer_seed, mkt.country) if priced else None,
            order_total=_order_total(items) if priced else None,
            currency=mkt.currency,
            number_of_items_shipped=shipped,
            number_of_items_unshipped=unshipped,
            payment_method_details=("CreditCard", "GiftCertificate") if buyer_seed % 11 == 0 else ("Standard",),
            replaced_order_id=order_id(self._seed, day_ordinal - 3, index) if orders.replacement[index] else None,
            marketplace_id=mkt.marketplace_id,
            earliest_ship_date=purchase + 120,
            latest_ship_date=latest_ship,
            earliest_delivery_date=latest_ship + _DAY if delivers else None,
            latest_delivery_date=latest_ship + 5 * _DAY if delivers else None,
            is_business_order=bool(orders.business[index]),
            purchase_order_number=f"PO{buyer_seed % 10**8:08d}" if orders.business[index] else None,
            is_prime=bool(orders.prime[index]),
            is_premium_order=bool(orders.premium[index]),
            messy_kind=int(orders.messy[index]),
            items=items,
        )

    def _items(
        self, orders: DayOrders, index: int, status: int, priced: bool, mkt: Marketplace, category: str, afn: bool
    ) -> list[ItemRecord]:
        """The order's lines as this version shows them."""
        catalog = self._catalog
        start, stop = int(orders.item_start[index]), int(orders.item_start[index + 1])
        free_shipping = afn or bool(orders.prime[index])
        items = []
        for line, row in enumerate(range(start, stop)):
            sku = int(orders.item_sku[row])
            quantity = int(orders.item_quantity[row])
            if status == SHIPPED or (status == PARTIALLY_SHIPPED and line == 0):
                quantity_shipped = quantity
            else:
                quantity_shipped = 0
            promoted = bool(orders.item_promotion[row])
            money: dict[str, int | None] = dict.fromkeys(
                ("item_price", "shipping_price", "item_tax", "shipping_tax", "shipping_discount", "promotion_discount")
            )
            if priced:
                price = catalog.price_cents(sku, mkt.usd_rate) * quantity
                shipping = 0 if free_shipping or line else round(_SHIPPING_USD_CENTS[category] * mkt.usd_rate)
                discount = price // 10 if promoted else 0
                money = dict(
                    item_price=price,
                    shipping_price=shipping,
                    item_tax=_tax(price - discount, mkt.tax_basis_points),
                    shipping_tax=_tax(shipping, mkt.tax_basis_points),
                    shipping_discount=0,
                    promotion_discount=discount,
                )
            items.append(
                ItemRecord(
                    order_item_id=order_item_id(self._seed, orders.day_ordinal, index, line),
                    asin=catalog.asins[sku],
                    seller_sku=catalog.skus[sku],
                    title=catalog.titles[sku],
                    quantity_ordered=quantity,
                    quantity_shipped=quantity_shipped,
                    number_of_items=int(catalog.units_per_pack[sku]),
                    currency=mkt.currency,
                    promotion_ids=("SIM-10PCT-OFF",) if promoted and priced else (),
                    is_gift=bool(orders.item_gift[row]),
                    marketplace_facilitator=mkt.country == "US",
                    **money,
                )
            )
        return items


def _tax(amount: int, basis_points: int) -> int:
    return (amount * basis_points + 5_000) // 10_000


def _order_total(items: list[ItemRecord]) -> int:
    return sum(
        (i.item_price or 0) + (i.shipping_price or 0) + (i.item_tax or 0) + (i.shipping_tax or 0)
        - (i.promotion_discount or 0) - (i.shipping_discount or 0)
        for i in items
    )


def _epoch_to_ordinal(epoch_seconds: float) -> int:
    return _EPOCH_ORDINAL + int(epoch_seconds // _DAY)
