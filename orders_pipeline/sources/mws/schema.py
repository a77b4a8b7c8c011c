"""Where each column of the shared raw schema comes from in an MWS record element (Order, OrderItem).

The names and kinds are the source-neutral ones (sources/columns.py); this table adds the XML element paths.
"""

from __future__ import annotations

from dataclasses import dataclass

from orders_pipeline.sources import columns
from orders_pipeline.sources.columns import Kind


@dataclass(frozen=True)
class Column(columns.Column):
    """One output column (name, kind) and the element path (below the record element) it comes from."""

    path: tuple[str, ...]  # empty: not read from the record element but filled from its context
    required: bool = False  # the element must be present; a response without it is malformed


def _money(name: str, *path: str) -> list[Column]:
    """The two columns of an MWS Money element: amount (decimal) and currency code."""
    return [
        Column(f"{name}_amount", Kind.MONEY, (*path, "Amount")),
        Column(f"{name}_currency_code", Kind.STRING, (*path, "CurrencyCode")),
    ]


def _address(name: str, element: str) -> list[Column]:
    """The non-personal parts of an Address: geography only, never name, street lines or phone."""
    parts = [
        ("city", "City"),
        ("county", "County"),
        ("district", "District"),
        ("municipality", "Municipality"),
        ("state_or_region", "StateOrRegion"),
        ("postal_code", "PostalCode"),
        ("country_code", "CountryCode"),
        ("address_type", "AddressType"),
    ]
    return [Column(f"{name}_{suffix}", Kind.STRING, (element, tag)) for suffix, tag in parts]


ORDER_COLUMNS: list[Column] = [
    Column("amazon_order_id", Kind.STRING, ("AmazonOrderId",), required=True),
    Column("seller_order_id", Kind.STRING, ("SellerOrderId",)),
    Column("purchase_date", Kind.TIMESTAMP, ("PurchaseDate",)),
    Column("last_update_date", Kind.TIMESTAMP, ("LastUpdateDate",), required=True),
    Column("order_status", Kind.STRING, ("OrderStatus",)),
    Column("fulfillment_channel", Kind.STRING, ("FulfillmentChannel",)),
    Column("sales_channel", Kind.STRING, ("SalesChannel",)),
    Column("order_channel", Kind.STRING, ("OrderChannel",)),
    Column("ship_service_level", Kind.STRING, ("ShipServiceLevel",)),
    Column("shipment_service_level_category", Kind.STRING, ("ShipmentServiceLevelCategory",)),
    Column("order_type", Kind.STRING, ("OrderType",)),
    Column("marketplace_id", Kind.STRING, ("MarketplaceId",)),
    *_money("order_total", "OrderTotal"),
    Column("number_of_items_shipped", Kind.INT, ("NumberOfItemsShipped",)),
    Column("number_of_items_unshipped", Kind.INT, ("NumberOfItemsUnshipped",)),
    Column("payment_method", Kind.STRING, ("PaymentMethod",)),
    Column("payment_method_details", Kind.STRING_LIST, ("PaymentMethodDetails", "PaymentMethodDetail")),
    Column("is_replacement_order", Kind.BOOL, ("IsReplacementOrder",)),
    Column("replaced_order_id", Kind.STRING, ("ReplacedOrderId",)),
    Column("earliest_ship_date", Kind.TIMESTAMP, ("EarliestShipDate",)),
    Column("latest_ship_date", Kind.TIMESTAMP, ("LatestShipDate",)),
    Column("earliest_delivery_date", Kind.TIMESTAMP, ("EarliestDeliveryDate",)),
    Column("latest_delivery_date", Kind.TIMESTAMP, ("LatestDeliveryDate",)),
    Column("promise_response_due_date", Kind.TIMESTAMP, ("PromiseResponseDueDate",)),
    Column("is_estimated_ship_date_set", Kind.BOOL, ("IsEstimatedShipDateSet",)),
    Column("is_business_order", Kind.BOOL, ("IsBusinessOrder",)),
    Column("is_prime", Kind.BOOL, ("IsPrime",)),
    Column("is_premium_order", Kind.BOOL, ("IsPremiumOrder",)),
    Column("is_global_express_enabled", Kind.BOOL, ("IsGlobalExpressEnabled",)),
    Column("is_sold_by_ab", Kind.BOOL, ("IsSoldByAB",)),
    Column("is_iba", Kind.BOOL, ("IsIBA",)),
    Column("is_access_point_order", Kind.BOOL, ("IsAccessPointOrder",)),
    Column("purchase_order_number", Kind.STRING, ("PurchaseOrderNumber",)),
    Column("easy_ship_shipment_status", Kind.STRING, ("EasyShipShipmentStatus",)),
    Column("buyer_county", Kind.STRING, ("BuyerCounty",)),
    Column("buyer_tax_info_taxing_region", Kind.STRING, ("BuyerTaxInfo", "TaxingRegion")),
    *_address("shipping_address", "ShippingAddress"),
    *_address("default_ship_from_location_address", "DefaultShipFromLocationAddress"),
    Column(
        "automated_shipping_settings_has_automated_shipping_settings",
        Kind.BOOL,
        ("AutomatedShippingSettings", "hasAutomatedShippingSettings"),
    ),
    Column("automated_shipping_settings_automated_carrier", Kind.STRING, ("AutomatedShippingSettings", "automatedCarrier")),
    Column(
        "automated_shipping_settings_automated_ship_method",
        Kind.STRING,
        ("AutomatedShippingSettings", "automatedShipMethod"),
    ),
    Column("buyer_email_sha256", Kind.STRING, ()),
]

ORDER_ITEM_COLUMNS: list[Column] = [
    Column("amazon_order_id", Kind.STRING, ()),
    Column("order_last_update_date", Kind.TIMESTAMP, ()),
    Column("order_item_id", Kind.STRING, ("OrderItemId",), required=True),
    Column("asin", Kind.STRING, ("ASIN",)),
    Column("seller_sku", Kind.STRING, ("SellerSKU",)),
    Column("title", Kind.STRING, ("Title",)),
    Column("quantity_ordered", Kind.INT, ("QuantityOrdered",)),
    Column("quantity_shipped", Kind.INT, ("QuantityShipped",)),
    Column("product_info_number_of_items", Kind.INT, ("ProductInfo", "NumberOfItems")),
    *_money("item_price", "ItemPrice"),
    *_money("shipping_price", "ShippingPrice"),
    *_money("gift_wrap_price", "GiftWrapPrice"),
    *_money("item_tax", "ItemTax"),
    *_money("shipping_tax", "ShippingTax"),
    *_money("gift_wrap_tax", "GiftWrapTax"),
    *_money("shipping_discount", "ShippingDiscount"),
    *_money("shipping_discount_tax", "ShippingDiscountTax"),
    *_money("promotion_discount", "PromotionDiscount"),
    *_money("promotion_discount_tax", "PromotionDiscountTax"),
    *_money("cod_fee", "CODFee"),
    *_money("cod_fee_discount", "CODFeeDiscount"),
    Column("points_granted_points_number", Kind.INT, ("PointsGranted", "PointsNumber")),
    *_money("points_granted_points_monetary_value", "PointsGranted", "PointsMonetaryValue"),
    Column("promotion_ids", Kind.STRING_LIST, ("PromotionIds", "PromotionId")),
    Column("tax_collection_model", Kind.STRING, ("TaxCollection", "Model")),
    Column("tax_collection_responsible_party", Kind.STRING, ("TaxCollection", "ResponsibleParty")),
    Column("is_gift", Kind.BOOL, ("IsGift",)),
    Column("gift_wrap_level", Kind.STRING, ("GiftWrapLevel",)),
    Column("condition_id", Kind.STRING, ("ConditionId",)),
    Column("condition_subtype_id", Kind.STRING, ("ConditionSubtypeId",)),
    Column("condition_note", Kind.STRING, ("ConditionNote",)),
    Column("scheduled_delivery_start_date", Kind.TIMESTAMP, ("ScheduledDeliveryStartDate",)),
    Column("scheduled_delivery_end_date", Kind.TIMESTAMP, ("ScheduledDeliveryEndDate",)),
    Column("price_designation", Kind.STRING, ("PriceDesignation",)),
    Column("is_transparency", Kind.BOOL, ("IsTransparency",)),
    Column("serial_number_required", Kind.BOOL, ("SerialNumberRequired",)),
    Column("ioss_number", Kind.STRING, ("IossNumber",)),
    Column("buyer_customized_info_customized_url", Kind.STRING, ("BuyerCustomizedInfo", "CustomizedURL")),
    Column(
        "buyer_requested_cancel_is_buyer_requested_cancel",
        Kind.BOOL,
        ("BuyerRequestedCancel", "IsBuyerRequestedCancel"),
    ),
    Column("buyer_requested_cancel_buyer_cancel_reason", Kind.STRING, ("BuyerRequestedCancel", "BuyerCancelReason")),
]

def _check_maps_onto(mws: list[Column], neutral: list[columns.Column]) -> None:
    """Fail at import when the MWS columns stop producing the shared raw columns exactly (names, kinds, order)."""
    produced = [(c.name, c.kind) for c in mws]
    wanted = [(c.name, c.kind) for c in neutral]
    if produced != wanted:
        raise RuntimeError(f"the MWS columns no longer match the raw schema: {produced} != {wanted}")


_check_maps_onto(ORDER_COLUMNS, columns.ORDER_COLUMNS)
_check_maps_onto(ORDER_ITEM_COLUMNS, columns.ORDER_ITEM_COLUMNS)
