"""Orders v2026-01-01 JSON for one order version; `includedData` decides which parts it carries.

Field names and nesting follow Amazon's model orders_2026-01-01.json. Two choices the model leaves open:
the item's `product.price.unitPrice` is an amount, so it comes with PROCEEDS like every other amount; and
the DISCOUNT proceeds breakdowns are negative, so an item's breakdowns add up to its `proceedsTotal`.
"""

from __future__ import annotations

from typing import Collection

from ..marketplaces import marketplace
from ..orders import ItemRecord, OrderRecord
from ..xml_writer import iso_seconds

INCLUDED_DATA = (
    "BUYER", "RECIPIENT", "PROCEEDS", "EXPENSE", "PROMOTION", "CANCELLATION", "FULFILLMENT", "PACKAGES", "TAX",
    "PAYMENT", "FULFILLMENT_ORDERS",
)
FULFILLMENT_STATUS = {
    "Pending": "PENDING", "Unshipped": "UNSHIPPED", "PartiallyShipped": "PARTIALLY_SHIPPED",
    "Shipped": "SHIPPED", "Canceled": "CANCELLED",
}
FULFILLED_BY = {"AFN": "AMAZON", "MFN": "MERCHANT"}
SERVICE_LEVEL = {
    "Standard": "STANDARD", "Expedited": "EXPEDITED", "SecondDay": "SECOND_DAY", "NextDay": "NEXT_DAY",
    "FreeEconomy": "FREE_ECONOMY",
}
_MESSY_BAD_YEAR, _MESSY_ENCODED_CREATED, _MESSY_TRAILING_SPACE, _MESSY_NEWLINE, _MESSY_ENCODED_SHIP = range(1, 6)


def money(cents: int, currency: str) -> dict:
    """`{amount: "12.34", currencyCode}` from minor units."""
    sign = "-" if cents < 0 else ""
    return {"amount": f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}", "currencyCode": currency}


def order_json(order: OrderRecord, included: Collection[str], messy: bool) -> dict:
    """One Order; with `messy`, the order's messy kind (if any) spoils one value as MWS's face does."""
    kind = order.messy_kind if messy else 0
    created = iso_seconds(order.purchase_date)
    if kind == _MESSY_BAD_YEAR:
        created = created[:3] + created[3] + created[3:]
    elif kind == _MESSY_ENCODED_CREATED:
        created = created.replace(":", "%3A")
    mkt = marketplace(order.marketplace_id)
    body: dict = {
        "orderId": order.amazon_order_id,
        "createdTime": created,
        "lastUpdatedTime": iso_seconds(order.last_update_date),
        "programs": [name for name, on in (("PRIME", order.is_prime), ("AMAZON_BUSINESS", order.is_business_order),
                                           ("PREMIUM", order.is_premium_order)) if on],
        "salesChannel": {
            "channelName": "NON_AMAZON" if order.sales_channel == "Non-Amazon" else "AMAZON",
            "marketplaceId": order.marketplace_id,
            "marketplaceName": mkt.sales_channel,
        },
    }
    if order.replaced_order_id:
        body["associatedOrders"] = [{"orderId": order.replaced_order_id, "associationType": "REPLACEMENT_ORIGINAL_ID"}]
    if "BUYER" in included and order.buyer is not None:
        body["buyer"] = _buyer(order)
    if "RECIPIENT" in included and order.buyer is not None:
        body["recipient"] = _recipient(order)
    if "PROCEEDS" in included and order.order_total is not None:
        body["proceeds"] = _order_proceeds(order)
    if "FULFILLMENT" in included:
        body["fulfillment"] = _order_fulfillment(order, kind)
    body["orderItems"] = [_item_json(item, order, included) for item in order.items]
    return body


def _buyer(order: OrderRecord) -> dict:
    assert order.buyer is not None
    buyer = {"buyerName": order.buyer.name, "buyerEmail": order.buyer.email}
    if order.purchase_order_number:
        buyer["buyerPurchaseOrderNumber"] = order.purchase_order_number
    return buyer


def _recipient(order: OrderRecord) -> dict:
    person = order.buyer
    assert person is not None
    address = {
        "name": person.name,
        "addressLine1": person.address_line1,
        "city": person.city,
        "stateOrRegion": person.state_or_region,
        "postalCode": person.postal_code,
        "countryCode": person.country_code,
        "phone": person.phone,
    }
    if person.address_type:
        address["addressType"] = person.address_type.upper()
    return {"deliveryAddress": address}


def _order_fulfillment(order: OrderRecord, kind: int) -> dict:
    level = SERVICE_LEVEL[order.shipment_service_level_category]
    if kind == _MESSY_TRAILING_SPACE:
        level += " "
    elif kind == _MESSY_NEWLINE:
        level += "\n                "
    latest_ship = iso_seconds(order.latest_ship_date)
    if kind == _MESSY_ENCODED_SHIP:
        latest_ship = latest_ship.replace(":", "%3A")
    fulfillment = {
        "fulfillmentStatus": FULFILLMENT_STATUS[order.order_status],
        "fulfilledBy": FULFILLED_BY[order.fulfillment_channel],
        "fulfillmentServiceLevel": level,
        "shipByWindow": {"earliestDateTime": iso_seconds(order.earliest_ship_date), "latestDateTime": latest_ship},
    }
    if order.earliest_delivery_date is not None and order.latest_delivery_date is not None:
        fulfillment["deliverByWindow"] = {
            "earliestDateTime": iso_seconds(order.earliest_delivery_date),
            "latestDateTime": iso_seconds(order.latest_delivery_date),
        }
    return fulfillment


def _order_proceeds(order: OrderRecord) -> dict:
    assert order.order_total is not None
    currency = order.currency
    totals = {kind: sum(_item_breakdown(item)[kind] for item in order.items) for kind in ("ITEM", "SHIPPING", "TAX", "DISCOUNT")}
    return {
        "grandTotal": money(order.order_total, currency),
        "breakdowns": [{"type": kind, "subtotal": money(cents, currency)} for kind, cents in totals.items()],
    }


def _item_breakdown(item: ItemRecord) -> dict[str, int]:
    """Minor units per proceeds category of a priced line (DISCOUNT negative)."""
    return {
        "ITEM": item.item_price or 0,
        "SHIPPING": item.shipping_price or 0,
        "TAX": (item.item_tax or 0) + (item.shipping_tax or 0),
        "DISCOUNT": -((item.promotion_discount or 0) + (item.shipping_discount or 0)),
    }


def _item_json(item: ItemRecord, order: OrderRecord, included: Collection[str]) -> dict:
    priced = item.item_price is not None
    product: dict = {"asin": item.asin, "title": item.title, "sellerSku": item.seller_sku,
                     "condition": {"conditionType": "NEW", "conditionSubtype": "NEW"}}
    body: dict = {"orderItemId": item.order_item_id, "quantityOrdered": item.quantity_ordered, "product": product}
    if "PROCEEDS" in included and priced:
        assert item.item_price is not None
        product["price"] = {"unitPrice": money(item.item_price // item.quantity_ordered, item.currency)}
        body["proceeds"] = _item_proceeds(item)
    if "PROMOTION" in included and item.promotion_ids:
        body["promotion"] = {"breakdowns": [{"promotionId": promotion} for promotion in item.promotion_ids]}
    if "FULFILLMENT" in included:
        unfulfilled = 0 if order.order_status == "Canceled" else item.quantity_ordered - item.quantity_shipped
        body["fulfillment"] = {"quantityFulfilled": item.quantity_shipped, "quantityUnfulfilled": unfulfilled}
    if "TAX" in included and priced and item.marketplace_facilitator:
        body["tax"] = {"taxCollections": [{"model": "MARKETPLACE_FACILITATOR", "responsibleParty": "Amazon Services, Inc."}]}
    return body


def _item_proceeds(item: ItemRecord) -> dict:
    c = item.currency
    parts = _item_breakdown(item)
    breakdowns: list[dict] = [
        {"type": "ITEM", "subtotal": money(parts["ITEM"], c)},
        {"type": "SHIPPING", "subtotal": money(parts["SHIPPING"], c)},
        {"type": "TAX", "subtotal": money(parts["TAX"], c), "detailedBreakdowns": [
            {"subtype": "ITEM", "value": money(item.item_tax or 0, c)},
            {"subtype": "SHIPPING", "value": money(item.shipping_tax or 0, c)},
        ]},
        {"type": "DISCOUNT", "subtotal": money(parts["DISCOUNT"], c), "detailedBreakdowns": [
            {"subtype": "ITEM", "value": money(-(item.promotion_discount or 0), c)},
            {"subtype": "SHIPPING", "value": money(-(item.shipping_discount or 0), c)},
        ]},
    ]
    return {"proceedsTotal": money(sum(parts.values()), c), "breakdowns": breakdowns}
