"""GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL: one tab-separated row per order item, gzipped.

Spellings follow Amazon's flat-file order reports (order-status `Cancelled`, fulfillment-channel
`Amazon`/`Merchant`, dates like `2024-03-03T10:15:30+00:00`); amounts are decimal strings, empty while Pending.
"""

from __future__ import annotations

import gzip
import time
from typing import Iterable

from ..orders import ItemRecord, OrderRecord

COLUMNS = (
    "amazon-order-id", "merchant-order-id", "purchase-date", "last-updated-date", "order-status",
    "fulfillment-channel", "sales-channel", "order-channel", "url", "ship-service-level", "product-name", "sku",
    "asin", "item-status", "quantity", "currency", "item-price", "item-tax", "shipping-price", "shipping-tax",
    "gift-wrap-price", "gift-wrap-tax", "item-promotion-discount", "ship-promotion-discount", "ship-city",
    "ship-state", "ship-postal-code", "ship-country", "promotion-ids", "is-business-order", "purchase-order-number",
    "price-designation",
)
ORDER_STATUS = {"Canceled": "Cancelled"}  # the reports' spelling; the other statuses read as in MWS
FULFILLMENT_CHANNEL = {"AFN": "Amazon", "MFN": "Merchant"}
_MESSY_BAD_YEAR, _MESSY_ENCODED_PURCHASE, _MESSY_TRAILING_SPACE, _MESSY_NEWLINE = range(1, 5)
_UNSAFE = str.maketrans({"\t": " ", "\r": " ", "\n": " "})


def report_gzip(orders: Iterable[OrderRecord], messy: bool) -> bytes:
    """The whole report document, gzip-compressed UTF-8."""
    lines = ["\t".join(COLUMNS)]
    for order in orders:
        lines.extend("\t".join(value.translate(_UNSAFE) for value in _row(order, item, messy)) for item in order.items)
    return gzip.compress(("\n".join(lines) + "\n").encode("utf-8"), compresslevel=6)


def _date(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(epoch))


def _amount(cents: int | None) -> str:
    if cents is None:
        return ""
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def _item_status(order: OrderRecord, item: ItemRecord) -> str:
    if order.order_status in ("Canceled", "Pending"):
        return ORDER_STATUS.get(order.order_status, order.order_status)
    return "Shipped" if item.quantity_shipped >= item.quantity_ordered else "Unshipped"


def _row(order: OrderRecord, item: ItemRecord, messy: bool) -> list[str]:
    kind = order.messy_kind if messy else 0
    purchase = _date(order.purchase_date)
    if kind == _MESSY_BAD_YEAR:
        purchase = purchase[:3] + purchase[3] + purchase[3:]
    elif kind == _MESSY_ENCODED_PURCHASE:
        purchase = purchase.replace(":", "%3A")
    level = order.shipment_service_level_category + (" " if kind in (_MESSY_TRAILING_SPACE, _MESSY_NEWLINE) else "")
    priced = item.item_price is not None
    place = order.buyer
    return [
        order.amazon_order_id, "", purchase, _date(order.last_update_date),
        ORDER_STATUS.get(order.order_status, order.order_status), FULFILLMENT_CHANNEL[order.fulfillment_channel],
        order.sales_channel, "", "", level, item.title, item.seller_sku, item.asin, _item_status(order, item),
        str(item.quantity_ordered), item.currency if priced else "",
        _amount(item.item_price), _amount(item.item_tax), _amount(item.shipping_price), _amount(item.shipping_tax),
        "0.00" if priced else "", "0.00" if priced else "",
        _amount(item.promotion_discount), _amount(item.shipping_discount),
        place.city if place else "", place.state_or_region if place else "",
        place.postal_code if place else "", place.country_code if place else "",
        ",".join(item.promotion_ids), "true" if order.is_business_order else "false",
        order.purchase_order_number or "", "",
    ]
