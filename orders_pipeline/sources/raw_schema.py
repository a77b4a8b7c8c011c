"""The shared raw schema: the columns of the `orders` and `order_items` tables, whatever source fills them.

These are the public contract (DESIGN.md): the MWS element names in snake_case, nested elements joined by `_`.
Each source maps its own fields onto them (sources/columns.py lists them with the kind each decodes as;
sources/mws/schema.py, sources/sp_api/); a column a source cannot fill stays null. Timestamps are UTC, money is
decimal, counts are integers.
"""

from __future__ import annotations

import pyarrow as pa

TIMESTAMP = pa.timestamp("us", tz="UTC")
MONEY = pa.decimal128(18, 2)

QUALITY_FIELDS = [
    pa.field("is_quarantined", pa.bool_(), nullable=False),
    pa.field("quarantined_fields", pa.string()),
]
"""Every raw row says whether any value was unparseable (kept as null) and which, with the raw text."""

_ORDER_FIELDS = [
    ("amazon_order_id", pa.string()),
    ("seller_order_id", pa.string()),
    ("purchase_date", TIMESTAMP),
    ("last_update_date", TIMESTAMP),
    ("order_status", pa.string()),
    ("fulfillment_channel", pa.string()),
    ("sales_channel", pa.string()),
    ("order_channel", pa.string()),
    ("ship_service_level", pa.string()),
    ("shipment_service_level_category", pa.string()),
    ("order_type", pa.string()),
    ("marketplace_id", pa.string()),
    ("order_total_amount", MONEY),
    ("order_total_currency_code", pa.string()),
    ("number_of_items_shipped", pa.int32()),
    ("number_of_items_unshipped", pa.int32()),
    ("payment_method", pa.string()),
    ("payment_method_details", pa.list_(pa.string())),
    ("is_replacement_order", pa.bool_()),
    ("replaced_order_id", pa.string()),
    ("earliest_ship_date", TIMESTAMP),
    ("latest_ship_date", TIMESTAMP),
    ("earliest_delivery_date", TIMESTAMP),
    ("latest_delivery_date", TIMESTAMP),
    ("promise_response_due_date", TIMESTAMP),
    ("is_estimated_ship_date_set", pa.bool_()),
    ("is_business_order", pa.bool_()),
    ("is_prime", pa.bool_()),
    ("is_premium_order", pa.bool_()),
    ("is_global_express_enabled", pa.bool_()),
    ("is_sold_by_ab", pa.bool_()),
    ("is_iba", pa.bool_()),
    ("is_access_point_order", pa.bool_()),
    ("purchase_order_number", pa.string()),
    ("easy_ship_shipment_status", pa.string()),
    ("buyer_county", pa.string()),
    ("buyer_tax_info_taxing_region", pa.string()),
    ("shipping_address_city", pa.string()),
    ("shipping_address_county", pa.string()),
    ("shipping_address_district", pa.string()),
    ("shipping_address_municipality", pa.string()),
    ("shipping_address_state_or_region", pa.string()),
    ("shipping_address_postal_code", pa.string()),
    ("shipping_address_country_code", pa.string()),
    ("shipping_address_address_type", pa.string()),
    ("default_ship_from_location_address_city", pa.string()),
    ("default_ship_from_location_address_county", pa.string()),
    ("default_ship_from_location_address_district", pa.string()),
    ("default_ship_from_location_address_municipality", pa.string()),
    ("default_ship_from_location_address_state_or_region", pa.string()),
    ("default_ship_from_location_address_postal_code", pa.string()),
    ("default_ship_from_location_address_country_code", pa.string()),
    ("default_ship_from_location_address_address_type", pa.string()),
    ("automated_shipping_settings_has_automated_shipping_settings", pa.bool_()),
    ("automated_shipping_settings_automated_carrier", pa.string()),
    ("automated_shipping_settings_automated_ship_method", pa.string()),
    ("buyer_email_sha256", pa.string()),
]

_ORDER_ITEM_FIELDS = [
    ("amazon_order_id", pa.string()),
    ("order_last_update_date", TIMESTAMP),
    ("order_item_id", pa.string()),
    ("asin", pa.string()),
    ("seller_sku", pa.string()),
    ("title", pa.string()),
    ("quantity_ordered", pa.int32()),
    ("quantity_shipped", pa.int32()),
    ("product_info_number_of_items", pa.int32()),
    ("item_price_amount", MONEY),
    ("item_price_currency_code", pa.string()),
    ("shipping_price_amount", MONEY),
    ("shipping_price_currency_code", pa.string()),
    ("gift_wrap_price_amount", MONEY),
    ("gift_wrap_price_currency_code", pa.string()),
    ("item_tax_amount", MONEY),
    ("item_tax_currency_code", pa.string()),
    ("shipping_tax_amount", MONEY),
    ("shipping_tax_currency_code", pa.string()),
    ("gift_wrap_tax_amount", MONEY),
    ("gift_wrap_tax_currency_code", pa.string()),
    ("shipping_discount_amount", MONEY),
    ("shipping_discount_currency_code", pa.string()),
    ("shipping_discount_tax_amount", MONEY),
    ("shipping_discount_tax_currency_code", pa.string()),
    ("promotion_discount_amount", MONEY),
    ("promotion_discount_currency_code", pa.string()),
    ("promotion_discount_tax_amount", MONEY),
    ("promotion_discount_tax_currency_code", pa.string()),
    ("cod_fee_amount", MONEY),
    ("cod_fee_currency_code", pa.string()),
    ("cod_fee_discount_amount", MONEY),
    ("cod_fee_discount_currency_code", pa.string()),
    ("points_granted_points_number", pa.int32()),
    ("points_granted_points_monetary_value_amount", MONEY),
    ("points_granted_points_monetary_value_currency_code", pa.string()),
    ("promotion_ids", pa.list_(pa.string())),
    ("tax_collection_model", pa.string()),
    ("tax_collection_responsible_party", pa.string()),
    ("is_gift", pa.bool_()),
    ("gift_wrap_level", pa.string()),
    ("condition_id", pa.string()),
    ("condition_subtype_id", pa.string()),
    ("condition_note", pa.string()),
    ("scheduled_delivery_start_date", TIMESTAMP),
    ("scheduled_delivery_end_date", TIMESTAMP),
    ("price_designation", pa.string()),
    ("is_transparency", pa.bool_()),
    ("serial_number_required", pa.bool_()),
    ("ioss_number", pa.string()),
    ("buyer_customized_info_customized_url", pa.string()),
    ("buyer_requested_cancel_is_buyer_requested_cancel", pa.bool_()),
    ("buyer_requested_cancel_buyer_cancel_reason", pa.string()),
]

ORDERS_SCHEMA = pa.schema([pa.field(name, kind) for name, kind in _ORDER_FIELDS] + QUALITY_FIELDS)
ORDER_ITEMS_SCHEMA = pa.schema([pa.field(name, kind) for name, kind in _ORDER_ITEM_FIELDS] + QUALITY_FIELDS)

ORDER_VERSION_KEY = ("amazon_order_id", "last_update_date")
"""What names one version of an order (the change feed keeps every version once)."""

ITEM_VERSION_KEY = ("amazon_order_id", "order_item_id", "order_last_update_date")
"""What names one item of one order version."""
