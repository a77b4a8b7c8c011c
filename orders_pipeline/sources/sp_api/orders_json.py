"""searchOrders / getOrder JSON → record batches of the shared raw `orders` and `order_items` schema.

SP-API values are spelled the MWS way the marts read (CANCELLED → Canceled, AMAZON → AFN, NON_AMAZON →
Non-Amazon, ...). Every value goes through the MWS decoders as text, so an unparseable one becomes null and is
named in `quarantined_fields`; a messy order never stops a page. Columns Orders v2026-01-01 has no field for
stay null (see the README's mapping table).

`item_price_amount` is the line total: the item's `proceeds.breakdowns[type=ITEM].subtotal` (Amazon's amount
for all units), else `product.price.unitPrice` × `quantityOrdered` when only a unit price is given. DISCOUNT
proceeds are negative (they lower proceeds); the discount columns hold them positive, as MWS does.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import pyarrow as pa

from orders_pipeline.sources.columns import ORDER_COLUMNS, ORDER_ITEM_COLUMNS, Column
from orders_pipeline.sources.personal_data import hash_buyer_email
from orders_pipeline.sources.raw_schema import ORDER_ITEMS_SCHEMA, ORDERS_SCHEMA
from orders_pipeline.sources.sp_api.batches import typed_batch
from orders_pipeline.sources.sp_api.errors import SpApiResponseFormatError

__all__ = ["ORDER_STATUS", "FULFILLED_BY", "MappedOrders", "map_orders", "mws_spelling"]

ORDER_STATUS = {
    "PENDING_AVAILABILITY": "PendingAvailability",
    "PENDING": "Pending",
    "UNSHIPPED": "Unshipped",
    "PARTIALLY_SHIPPED": "PartiallyShipped",
    "SHIPPED": "Shipped",
    "CANCELLED": "Canceled",
    "UNFULFILLABLE": "Unfulfillable",
}
FULFILLED_BY = {"AMAZON": "AFN", "MERCHANT": "MFN"}
_SERVICE_LEVEL = {
    "EXPEDITED": "Expedited", "FREE_ECONOMY": "FreeEconomy", "NEXT_DAY": "NextDay", "PRIORITY": "Priority",
    "SAME_DAY": "SameDay", "SECOND_DAY": "SecondDay", "SCHEDULED": "Scheduled", "STANDARD": "Standard",
}
_CONDITION = {
    "NEW": "New", "USED": "Used", "COLLECTIBLE": "Collectible", "REFURBISHED": "Refurbished", "PREORDER": "Preorder",
    "CLUB": "Club", "MINT": "Mint", "VERY_GOOD": "Very Good", "GOOD": "Good", "ACCEPTABLE": "Acceptable",
    "POOR": "Poor", "OEM": "OEM", "WARRANTY": "Warranty", "REFURBISHED_WARRANTY": "Refurbished Warranty",
    "OPEN_BOX": "Open Box", "ANY": "Any", "OTHER": "Other",
}
"""MWS ConditionId / ConditionSubtypeId spellings as MWS's documentation lists them (the subtypes with spaces)."""
_PRICE_DESIGNATION = {"BUSINESS_PRICE": "BusinessPrice"}
_ADDRESS_TYPE = {"RESIDENTIAL": "Residential", "COMMERCIAL": "Commercial"}
_TAX_MODEL = {"MARKETPLACE_FACILITATOR": "MarketplaceFacilitator"}


@dataclass(frozen=True)
class MappedOrders:
    """One page of orders in the raw schema: its orders, its items, and how many values were quarantined."""

    orders: pa.RecordBatch
    items: pa.RecordBatch
    quarantined_values: int


def mws_spelling(value: object, vocabulary: dict[str, str]) -> str | None:
    """The MWS spelling of an SP-API enum value (case and spaces forgiven); an unknown value is kept as sent."""
    text = _scalar(value)
    if text is None:
        return None
    return vocabulary.get(text.strip().upper(), text.strip())


def map_orders(orders: Iterable[object], *, buyer_email_salt: str | None = None) -> MappedOrders:
    """The raw-schema batches of searchOrders/getOrder orders; the buyer email only as its salted hash."""
    order_rows: list[dict[str, Any]] = []
    item_rows: list[dict[str, Any]] = []
    for order in orders:
        if not isinstance(order, dict):
            raise SpApiResponseFormatError(f"an order is a JSON {type(order).__name__}, not an object")
        row = _order_row(order, buyer_email_salt)
        order_rows.append(row)
        items = order.get("orderItems") or []
        if not isinstance(items, list):
            raise SpApiResponseFormatError(f"order {row['amazon_order_id']}: orderItems is not a list")
        for item in items:
            if not isinstance(item, dict):
                raise SpApiResponseFormatError(f"order {row['amazon_order_id']}: an order item is not an object")
            item_rows.append(_item_row(item, row))
    orders_batch, quarantined_orders = _batch(ORDER_COLUMNS, ORDERS_SCHEMA, order_rows)
    items_batch, quarantined_items = _batch(ORDER_ITEM_COLUMNS, ORDER_ITEMS_SCHEMA, item_rows)
    return MappedOrders(orders_batch, items_batch, quarantined_orders + quarantined_items)


def _batch(columns: list[Column], schema: pa.Schema, rows: list[dict[str, Any]]) -> tuple[pa.RecordBatch, int]:
    texts = {column.name: [row.get(column.name) for row in rows] for column in columns}
    return typed_batch(columns, schema, texts, len(rows))


# -- one order ----------------------------------------------------------------------------------------------


def _order_row(order: dict, salt: str | None) -> dict[str, Any]:
    order_id = _scalar(order.get("orderId"))
    if not order_id or not order_id.strip():
        raise SpApiResponseFormatError("an order has no orderId, which SP-API always sends")
    if _scalar(order.get("lastUpdatedTime")) is None:
        raise SpApiResponseFormatError(f"order {order_id.strip()} has no lastUpdatedTime, which SP-API always sends")
    channel = _dict(order, "salesChannel")
    fulfillment = _dict(order, "fulfillment")
    programs = _strings(order.get("programs"))
    items = [item for item in _list(order, "orderItems") if isinstance(item, dict)]
    replaced = [
        associated for associated in _list(order, "associatedOrders")
        if isinstance(associated, dict) and _scalar(associated.get("associationType")) == "REPLACEMENT_ORIGINAL_ID"
    ]
    address = _dict(_dict(order, "recipient"), "deliveryAddress")
    buyer = _dict(order, "buyer")
    return {
        "amazon_order_id": order_id.strip(),
        "seller_order_id": _alias(order, "SELLER_ORDER_ID"),
        "purchase_date": _scalar(order.get("createdTime")),
        "last_update_date": _scalar(order.get("lastUpdatedTime")),
        "order_status": mws_spelling(fulfillment.get("fulfillmentStatus"), ORDER_STATUS),
        "fulfillment_channel": mws_spelling(fulfillment.get("fulfilledBy"), FULFILLED_BY),
        "sales_channel": _sales_channel(channel),
        "shipment_service_level_category": mws_spelling(fulfillment.get("fulfillmentServiceLevel"), _SERVICE_LEVEL),
        "order_type": "Preorder" if "PREORDER" in programs else "StandardOrder",
        "marketplace_id": _scalar(channel.get("marketplaceId")),
        **_money("order_total", _dict(order, "proceeds").get("grandTotal")),
        "number_of_items_shipped": _sum_quantity(items, "quantityFulfilled"),
        "number_of_items_unshipped": _sum_quantity(items, "quantityUnfulfilled"),
        "is_replacement_order": "true" if replaced else "false",
        "replaced_order_id": _scalar(replaced[0].get("orderId")) if replaced else None,
        "earliest_ship_date": _scalar(_dict(fulfillment, "shipByWindow").get("earliestDateTime")),
        "latest_ship_date": _scalar(_dict(fulfillment, "shipByWindow").get("latestDateTime")),
        "earliest_delivery_date": _scalar(_dict(fulfillment, "deliverByWindow").get("earliestDateTime")),
        "latest_delivery_date": _scalar(_dict(fulfillment, "deliverByWindow").get("latestDateTime")),
        "is_business_order": _flag("AMAZON_BUSINESS" in programs),
        "is_prime": _flag("PRIME" in programs),
        "is_premium_order": _flag("PREMIUM" in programs),
        "is_iba": _flag("INVOICE_BY_AMAZON" in programs),
        "purchase_order_number": _scalar(buyer.get("buyerPurchaseOrderNumber")),
        "shipping_address_city": _scalar(address.get("city")),
        "shipping_address_county": _scalar(address.get("districtOrCounty")),
        "shipping_address_municipality": _scalar(address.get("municipality")),
        "shipping_address_state_or_region": _scalar(address.get("stateOrRegion")),
        "shipping_address_postal_code": _scalar(address.get("postalCode")),
        "shipping_address_country_code": _scalar(address.get("countryCode")),
        "shipping_address_address_type": mws_spelling(address.get("addressType"), _ADDRESS_TYPE),
        "buyer_email_sha256": hash_buyer_email(_scalar(buyer.get("buyerEmail")), salt) if salt else None,
    }


def _sales_channel(channel: dict) -> str | None:
    """`Non-Amazon` for a NON_AMAZON channel, else the marketplace name (e.g. `Amazon.com`), as MWS spells it."""
    name = _scalar(channel.get("channelName"))
    if name is not None and name.strip().upper() == "NON_AMAZON":
        return "Non-Amazon"
    return _scalar(channel.get("marketplaceName"))


def _alias(order: dict, alias_type: str) -> str | None:
    for alias in _list(order, "orderAliases"):
        if isinstance(alias, dict) and _scalar(alias.get("aliasType")) == alias_type:
            return _scalar(alias.get("aliasId"))
    return None


def _flag(value: bool) -> str:
    """A flag as the boolean text the decoders read."""
    return "true" if value else "false"


def _sum_quantity(items: list[dict], field: str) -> str | None:
    """The sum of one fulfillment quantity over the items (null if none says; its raw text if one is not a number)."""
    values = [_dict(item, "fulfillment").get(field) for item in items]
    present = [value for value in values if value is not None]
    if not present:
        return None
    if all(isinstance(value, int) and not isinstance(value, bool) for value in present):
        return str(sum(present))
    return next(_scalar(value) for value in present if not (isinstance(value, int) and not isinstance(value, bool)))


# -- one item -----------------------------------------------------------------------------------------------


def _item_row(item: dict, order_row: dict[str, Any]) -> dict[str, Any]:
    item_id = _scalar(item.get("orderItemId"))
    if not item_id or not item_id.strip():
        raise SpApiResponseFormatError(f"order {order_row['amazon_order_id']} has an item without orderItemId")
    product = _dict(item, "product")
    condition = _dict(product, "condition")
    price = _dict(product, "price")
    fulfillment = _dict(item, "fulfillment")
    breakdowns = _breakdowns(_dict(item, "proceeds"))
    window = _dict(_dict(fulfillment, "shipping"), "scheduledDeliveryWindow")
    gift = _dict(_dict(fulfillment, "packing"), "giftOption")
    collection = next((c for c in _list(_dict(item, "tax"), "taxCollections") if isinstance(c, dict)), {})
    request = _dict(_dict(item, "cancellation"), "cancellationRequest")
    programs = _strings(item.get("programs"))
    promotions = [
        _scalar(b.get("promotionId")) for b in _list(_dict(item, "promotion"), "breakdowns") if isinstance(b, dict)
    ]
    return {
        "amazon_order_id": order_row["amazon_order_id"],
        "order_last_update_date": order_row["last_update_date"],
        "order_item_id": item_id.strip(),
        "asin": _scalar(product.get("asin")),
        "seller_sku": _scalar(product.get("sellerSku")),
        "title": _scalar(product.get("title")),
        "quantity_ordered": _scalar(item.get("quantityOrdered")),
        "quantity_shipped": _scalar(fulfillment.get("quantityFulfilled")),
        **_money("item_price", _item_price(breakdowns, price, item.get("quantityOrdered"))),
        **_money("shipping_price", breakdowns.get(("SHIPPING", None))),
        **_money("gift_wrap_price", breakdowns.get(("GIFT_WRAP", None))),
        **_money("item_tax", _part(breakdowns, "TAX", "ITEM")),
        **_money("shipping_tax", _part(breakdowns, "TAX", "SHIPPING")),
        **_money("gift_wrap_tax", _part(breakdowns, "TAX", "GIFT_WRAP")),
        **_money("promotion_discount", _negated(_part(breakdowns, "DISCOUNT", "ITEM"))),
        **_money("shipping_discount", _negated(_part(breakdowns, "DISCOUNT", "SHIPPING"))),
        **_money("cod_fee", breakdowns.get(("COD_FEE", None))),
        "promotion_ids": [p for p in promotions if p] if promotions else None,
        "tax_collection_model": mws_spelling(collection.get("model"), _TAX_MODEL),
        "tax_collection_responsible_party": _scalar(collection.get("responsibleParty")),
        "is_gift": _flag(bool(gift)) if fulfillment else None,
        "gift_wrap_level": _scalar(gift.get("giftWrapLevel")),
        "condition_id": mws_spelling(condition.get("conditionType"), _CONDITION),
        "condition_subtype_id": mws_spelling(condition.get("conditionSubtype"), _CONDITION),
        "condition_note": _scalar(condition.get("conditionNote")),
        "scheduled_delivery_start_date": _scalar(window.get("earliestDateTime")),
        "scheduled_delivery_end_date": _scalar(window.get("latestDateTime")),
        "price_designation": mws_spelling(price.get("priceDesignation"), _PRICE_DESIGNATION),
        "is_transparency": _flag("TRANSPARENCY" in programs),
        "buyer_customized_info_customized_url": _scalar(_dict(product, "customization").get("customizedUrl")),
        "buyer_requested_cancel_is_buyer_requested_cancel": "true" if _scalar(request.get("requester")) == "BUYER" else None,
        "buyer_requested_cancel_buyer_cancel_reason": _scalar(request.get("cancelReason")),
    }


def _breakdowns(proceeds: dict) -> dict[tuple[str, str | None], dict]:
    """Proceeds by (type, None) and by (type, detailed subtype), each a Money; amounts of repeated keys summed."""
    out: dict[tuple[str, str | None], dict] = {}
    for breakdown in _list(proceeds, "breakdowns"):
        if not isinstance(breakdown, dict) or _scalar(breakdown.get("type")) is None:
            continue
        kind = _scalar(breakdown.get("type")).strip().upper()
        _add(out, (kind, None), breakdown.get("subtotal"))
        for detail in _list(breakdown, "detailedBreakdowns"):
            if isinstance(detail, dict) and _scalar(detail.get("subtype")) is not None:
                _add(out, (kind, _scalar(detail.get("subtype")).strip().upper()), detail.get("value"))
    return out


def _part(breakdowns: dict, kind: str, subtype: str) -> dict | None:
    """The `subtype` share of a TAX or DISCOUNT breakdown; its whole subtotal counts as ITEM when it has no detail."""
    if any(key[0] == kind and key[1] is not None for key in breakdowns):
        return breakdowns.get((kind, subtype))
    return breakdowns.get((kind, None)) if subtype == "ITEM" else None


def _negated(money: dict | None) -> dict | None:
    """A DISCOUNT proceeds amount (negative: it lowers proceeds) as MWS spells a discount: positive."""
    amount = _decimal(money.get("amount")) if money else None
    return money if amount is None else {**money, "amount": str(-amount)}


def _item_price(breakdowns: dict, price: dict, quantity: object) -> dict | None:
    """The line total: the ITEM proceeds subtotal, else unitPrice × quantityOrdered."""
    return breakdowns.get(("ITEM", None)) or _line_total(price.get("unitPrice"), quantity)


def _add(out: dict, key: tuple[str, str | None], money: object) -> None:
    if not isinstance(money, dict):
        return
    if key not in out:
        out[key] = money
        return
    total = _decimal(out[key].get("amount")), _decimal(money.get("amount"))
    if None in total:  # keep the first unparseable text: it is quarantined
        out[key] = out[key] if total[0] is None else money
        return
    out[key] = {"amount": str(total[0] + total[1]), "currencyCode": out[key].get("currencyCode")}


def _line_total(unit_price: object, quantity: object) -> dict | None:
    """unitPrice × quantityOrdered as Money; text that fails decoding (so is quarantined) when either is no number."""
    if not isinstance(unit_price, dict):
        return None
    amount = _decimal(unit_price.get("amount"))
    if amount is not None and isinstance(quantity, int) and not isinstance(quantity, bool):
        return {"amount": str(amount * quantity), "currencyCode": unit_price.get("currencyCode")}
    text = f"{_scalar(unit_price.get('amount'))} x {_scalar(quantity)}"
    return {"amount": text, "currencyCode": unit_price.get("currencyCode")}


# -- JSON helpers -------------------------------------------------------------------------------------------


def _money(name: str, money: object) -> dict[str, Any]:
    """The `<name>_amount` / `<name>_currency_code` texts of a Money object (both null when absent)."""
    if not isinstance(money, dict):
        return {f"{name}_amount": _scalar(money), f"{name}_currency_code": None}
    return {f"{name}_amount": _scalar(money.get("amount")), f"{name}_currency_code": _scalar(money.get("currencyCode"))}


def _decimal(value: object) -> Decimal | None:
    try:
        number = Decimal(str(value).strip()) if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None
    except InvalidOperation:
        return None
    return number if number is not None and number.is_finite() else None


def _dict(parent: dict, key: str) -> dict:
    value = parent.get(key)
    return value if isinstance(value, dict) else {}


def _list(parent: dict, key: str) -> list:
    value = parent.get(key)
    return value if isinstance(value, list) else []


def _strings(value: object) -> list[str]:
    """A list of enum strings, upper-cased (an absent field: no programs)."""
    if not isinstance(value, list):
        return []
    return [item.strip().upper() for item in value if isinstance(item, str)]


_SCALAR_TEXT: dict[type, Callable[[Any], str]] = {
    str: str,
    bool: lambda value: "true" if value else "false",
    int: str,
    float: repr,
}


def _scalar(value: object) -> str | None:
    """A JSON scalar as the text the MWS decoders read; an object or array as its JSON text (then quarantined)."""
    if value is None:
        return None
    convert = _SCALAR_TEXT.get(type(value))
    return convert(value) if convert else json.dumps(value, separators=(",", ":"))[:200]
