"""MWS Orders 2013-09-01 XML, written by hand in documented element order (independent of the client)."""

from __future__ import annotations

import time
from datetime import datetime, timezone

from .orders import ItemRecord, OrderRecord
from .people import Buyer

NAMESPACE = "https://mws.amazonservices.com/Orders/2013-09-01"
_MESSY_BAD_YEAR, _MESSY_ENCODED_PURCHASE, _MESSY_TRAILING_SPACE, _MESSY_NEWLINE, _MESSY_ENCODED_SHIP = range(1, 6)


def escape(text: str) -> str:
    """Escape text content for XML."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def iso_seconds(epoch: int) -> str:
    """`2024-03-03T10:15:30Z`, the form real order timestamps take."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def iso_millis(moment: datetime) -> str:
    """`2024-03-03T10:15:30.123Z`, the form of x-mws-timestamp and echoed window bounds."""
    utc = moment.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _el(name: str, value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        value = "true" if value else "false"
    return f"<{name}>{escape(str(value))}</{name}>"


def _money(name: str, currency: str, cents: int | None) -> str:
    if cents is None:
        return ""
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"<{name}><CurrencyCode>{currency}</CurrencyCode><Amount>{sign}{cents // 100}.{cents % 100:02d}</Amount></{name}>"


def _address(buyer: Buyer) -> str:
    return (
        "<ShippingAddress>"
        + _el("Name", buyer.name)
        + _el("AddressLine1", buyer.address_line1)
        + _el("City", buyer.city)
        + _el("StateOrRegion", buyer.state_or_region)
        + _el("PostalCode", buyer.postal_code)
        + _el("CountryCode", buyer.country_code)
        + _el("Phone", buyer.phone)
        + _el("AddressType", buyer.address_type)
        + "</ShippingAddress>"
    )


def order_xml(order: OrderRecord, messy: bool) -> str:
    """One <Order>; with `messy`, the order's messy kind (if any) spoils one field like Amazon's examples do."""
    kind = order.messy_kind if messy else 0
    purchase = iso_seconds(order.purchase_date)
    if kind == _MESSY_BAD_YEAR:
        purchase = purchase[:3] + purchase[3] + purchase[3:]
    elif kind == _MESSY_ENCODED_PURCHASE:
        purchase = iso_seconds(order.purchase_date)[:-1].replace(":", "%3A") + ".000Z"
    latest_ship = iso_seconds(order.latest_ship_date)
    if kind == _MESSY_ENCODED_SHIP:
        latest_ship = latest_ship.replace(":", "%3A")
    category = order.shipment_service_level_category
    if kind == _MESSY_TRAILING_SPACE:
        category += " "
    elif kind == _MESSY_NEWLINE:
        category += "\n                "
    buyer = order.buyer
    parts = [
        "<Order>",
        _el("AmazonOrderId", order.amazon_order_id),
        _el("PurchaseDate", purchase),
        _el("LastUpdateDate", iso_seconds(order.last_update_date)),
        _el("OrderStatus", order.order_status),
        _el("FulfillmentChannel", order.fulfillment_channel),
        _el("SalesChannel", order.sales_channel),
        _el("ShipServiceLevel", order.ship_service_level),
        _address(buyer) if buyer else "",
        _money("OrderTotal", order.currency, order.order_total),
        _el("NumberOfItemsShipped", order.number_of_items_shipped),
        _el("NumberOfItemsUnshipped", order.number_of_items_unshipped),
        _el("PaymentMethod", "Other"),
        "<PaymentMethodDetails>",
        *(_el("PaymentMethodDetail", d) for d in order.payment_method_details),
        "</PaymentMethodDetails>",
        _el("IsReplacementOrder", order.replaced_order_id is not None),
        _el("ReplacedOrderId", order.replaced_order_id),
        _el("MarketplaceId", order.marketplace_id),
        _el("BuyerEmail", buyer.email if buyer else None),
        _el("BuyerName", buyer.name if buyer else None),
        _el("ShipmentServiceLevelCategory", category),
        _el("OrderType", "StandardOrder"),
        _el("EarliestShipDate", iso_seconds(order.earliest_ship_date)),
        _el("LatestShipDate", latest_ship),
        _el("EarliestDeliveryDate", _optional_iso(order.earliest_delivery_date)),
        _el("LatestDeliveryDate", _optional_iso(order.latest_delivery_date)),
        _el("IsBusinessOrder", order.is_business_order),
        _el("PurchaseOrderNumber", order.purchase_order_number),
        _el("IsPrime", order.is_prime),
        _el("IsPremiumOrder", order.is_premium_order),
        _el("IsGlobalExpressEnabled", False),
        "</Order>",
    ]
    return "".join(parts)


def item_xml(item: ItemRecord) -> str:
    """One <OrderItem>; Pending orders' lines carry no prices, taxes, shipping or promotions."""
    c = item.currency
    promotions = (
        "<PromotionIds>" + "".join(_el("PromotionId", p) for p in item.promotion_ids) + "</PromotionIds>"
        if item.promotion_ids
        else ""
    )
    tax_collection = (
        "<TaxCollection><Model>MarketplaceFacilitator</Model><ResponsibleParty>Amazon Services, Inc.</ResponsibleParty></TaxCollection>"
        if item.marketplace_facilitator and item.item_price is not None
        else ""
    )
    return "".join(
        (
            "<OrderItem>",
            _el("ASIN", item.asin),
            _el("OrderItemId", item.order_item_id),
            _el("SellerSKU", item.seller_sku),
            _el("Title", item.title),
            _el("QuantityOrdered", item.quantity_ordered),
            _el("QuantityShipped", item.quantity_shipped),
            f"<ProductInfo><NumberOfItems>{item.number_of_items}</NumberOfItems></ProductInfo>",
            _money("ItemPrice", c, item.item_price),
            _money("ShippingPrice", c, item.shipping_price),
            tax_collection,
            _money("ItemTax", c, item.item_tax),
            _money("ShippingTax", c, item.shipping_tax),
            _money("ShippingDiscount", c, item.shipping_discount),
            _money("PromotionDiscount", c, item.promotion_discount),
            promotions,
            _el("IsGift", item.is_gift),
            _el("ConditionId", "New"),
            _el("ConditionSubtypeId", "New"),
            _el("IsTransparency", False),
            "</OrderItem>",
        )
    )


def _optional_iso(epoch: int | None) -> str | None:
    return None if epoch is None else iso_seconds(epoch)


def success_xml(action: str, result_body: str, request_id: str) -> str:
    """A whole <ActionResponse> document around an already-rendered result body."""
    return (
        f'<?xml version="1.0"?>\n<{action}Response xmlns="{NAMESPACE}">'
        f"<{action}Result>{result_body}</{action}Result>"
        f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
        f"</{action}Response>"
    )


def error_xml(error_type: str, code: str, message: str, request_id: str, request_id_tag: str = "RequestId") -> str:
    """An <ErrorResponse> document."""
    return (
        f'<?xml version="1.0"?>\n<ErrorResponse xmlns="{NAMESPACE}"><Error>'
        f"{_el('Type', error_type)}{_el('Code', code)}{_el('Message', message)}</Error>"
        f"<{request_id_tag}>{request_id}</{request_id_tag}></ErrorResponse>"
    )
