"""The GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL flat file (TSV) → the raw `orders` / `order_items` tables.

The file has one row per order item, so an order is the first row of each (amazon-order-id, last-updated-date).
Every column is read as text with `pyarrow.csv` and decoded by the same MWS decoders (unparseable → null and
quarantined). The report cannot fill the order total, the items' shipped quantities or Amazon's order-item id:
those stay null, except `order_item_id`, which gets the surrogate `item_key` describes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv

from orders_pipeline.sources.columns import ORDER_COLUMNS, ORDER_ITEM_COLUMNS
from orders_pipeline.sources.raw_schema import ORDER_ITEMS_SCHEMA, ORDERS_SCHEMA
from orders_pipeline.sources.sp_api.batches import typed_batch
from orders_pipeline.sources.sp_api.errors import SpApiResponseFormatError

__all__ = [
    "ORDER_FIELDS", "ITEM_FIELDS", "MONEY_FIELDS", "MARKETPLACE_OF_SALES_CHANNEL", "ReportTables", "read_report", "item_key",
]

ORDER_FIELDS = {
    "amazon_order_id": "amazon-order-id",
    "seller_order_id": "merchant-order-id",
    "purchase_date": "purchase-date",
    "last_update_date": "last-updated-date",
    "order_status": "order-status",
    "fulfillment_channel": "fulfillment-channel",
    "sales_channel": "sales-channel",
    "order_channel": "order-channel",
    "shipment_service_level_category": "ship-service-level",
    "is_business_order": "is-business-order",
    "purchase_order_number": "purchase-order-number",
    "shipping_address_city": "ship-city",
    "shipping_address_state_or_region": "ship-state",
    "shipping_address_postal_code": "ship-postal-code",
    "shipping_address_country_code": "ship-country",
}
"""Raw `orders` column ← report column (vocabulary mapped for order_status and fulfillment_channel). The flat
file's ship-service-level is the category (Standard, Expedited, ...), MWS's ShipmentServiceLevelCategory."""

MARKETPLACE_OF_SALES_CHANNEL = {
    "Amazon.com": "ATVPDKIKX0DER", "Amazon.ca": "A2EUQ1WTGCTBG2", "Amazon.com.mx": "A1AM78C64UM0Y8",
    "Amazon.com.br": "A2Q3Y263D00KWC", "Amazon.co.uk": "A1F83G8C2ARO7P", "Amazon.de": "A1PA6795UKMFR9",
    "Amazon.fr": "A13V1IB3VIYZZH", "Amazon.it": "APJ6JRA9NG5V4", "Amazon.es": "A1RKKUPIHCS9HS",
    "Amazon.nl": "A1805IZSGTT6HS", "Amazon.se": "A2NODRKZP88ZB9", "Amazon.pl": "A1C3SOZRARQ6R3",
    "Amazon.com.be": "AMEN7PMS3EDWL", "Amazon.com.tr": "A33AVAJ2PDY3EV", "Amazon.ae": "A2VIGQ35RCS4UG",
    "Amazon.sa": "A17E79C6D8DWNP", "Amazon.eg": "ARBP9OOSHTCHU", "Amazon.in": "A21TJRUUN4KGV",
    "Amazon.co.jp": "A1VC38T7YXB528", "Amazon.com.au": "A39IBJ37TRP1C6", "Amazon.sg": "A19VAU5U5O7RUS",
}
"""The report has no marketplace id: an Amazon order's sales-channel names its marketplace (Amazon's public ids)."""

ITEM_FIELDS = {
    "amazon_order_id": "amazon-order-id",
    "order_last_update_date": "last-updated-date",
    "asin": "asin",
    "seller_sku": "sku",
    "title": "product-name",
    "quantity_ordered": "quantity",
    "price_designation": "price-designation",
}
"""Raw `order_items` column ← report column."""

MONEY_FIELDS = {
    "item_price": "item-price",
    "item_tax": "item-tax",
    "shipping_price": "shipping-price",
    "shipping_tax": "shipping-tax",
    "gift_wrap_price": "gift-wrap-price",
    "gift_wrap_tax": "gift-wrap-tax",
    "promotion_discount": "item-promotion-discount",
    "shipping_discount": "ship-promotion-discount",
}
"""Raw `<name>_amount` ← report column; `<name>_currency_code` ← `currency` where the amount is given."""

_KEY = ("amazon-order-id", "last-updated-date")
_STATUS = {
    "PENDING": "Pending", "PENDINGAVAILABILITY": "PendingAvailability", "UNSHIPPED": "Unshipped",
    "PARTIALLYSHIPPED": "PartiallyShipped", "SHIPPED": "Shipped", "CANCELLED": "Canceled", "CANCELED": "Canceled",
    "UNFULFILLABLE": "Unfulfillable",
}
_CHANNEL = {"AMAZON": "AFN", "AFN": "AFN", "MERCHANT": "MFN", "MFN": "MFN"}


class ReportTables:
    """One report's rows in the raw schema."""

    def __init__(self, orders: pa.Table, items: pa.Table, quarantined_values: int, malformed_rows: int) -> None:
        self.orders = orders
        self.items = items
        self.quarantined_values = quarantined_values
        self.malformed_rows = malformed_rows  # rows with the wrong number of fields, left out

    def __repr__(self) -> str:
        return f"ReportTables(orders={self.orders.num_rows}, items={self.items.num_rows}, malformed_rows={self.malformed_rows})"


def read_report(tsv: bytes, marketplace_ids: Sequence[str] = ()) -> ReportTables:
    """Parse the flat file of a report over `marketplace_ids` and map it to the raw tables."""
    table, malformed = _read_tsv(tsv)
    missing = [name for name in (*_KEY, "sku", "asin") if name not in table.column_names]
    if missing:
        raise SpApiResponseFormatError(f"the orders report has no {', '.join(missing)} column; is it {', '.join(_KEY)}...?")
    table = table.filter(pc.invert(pc.is_null(_blank_null(table["amazon-order-id"]))))
    firsts = _first_row_per_order(table)
    orders_texts = {name: _column(table, source).take(firsts) for name, source in ORDER_FIELDS.items()}
    orders_texts["order_status"] = _vocabulary(orders_texts["order_status"], _STATUS)
    orders_texts["fulfillment_channel"] = _vocabulary(orders_texts["fulfillment_channel"], _CHANNEL)
    orders_texts["marketplace_id"] = _marketplaces(orders_texts["sales_channel"], marketplace_ids)
    orders, quarantined_orders = typed_batch(ORDER_COLUMNS, ORDERS_SCHEMA, orders_texts, len(firsts))

    item_texts = {name: _column(table, source) for name, source in ITEM_FIELDS.items()}
    item_texts["order_item_id"] = item_key(table["amazon-order-id"], table["sku"], table["asin"])
    currency = _column(table, "currency")
    for name, source in MONEY_FIELDS.items():
        amount = _blank_null(_column(table, source))
        item_texts[f"{name}_amount"] = amount
        item_texts[f"{name}_currency_code"] = pc.if_else(pc.is_null(amount), pa.scalar(None, pa.string()), currency)
    promotions = _blank_null(_column(table, "promotion-ids"))
    item_texts["promotion_ids"] = pc.split_pattern(promotions, ",")
    items, quarantined_items = typed_batch(ORDER_ITEM_COLUMNS, ORDER_ITEMS_SCHEMA, item_texts, table.num_rows)
    return ReportTables(
        pa.Table.from_batches([orders]), pa.Table.from_batches([items]), quarantined_orders + quarantined_items, malformed
    )


def item_key(order_ids: pa.ChunkedArray, skus: pa.ChunkedArray, asins: pa.ChunkedArray) -> pa.Array:
    """The surrogate order-item id of report rows: ``<amazon-order-id>/<sku>`` (the ASIN when the SKU is blank).

    The report carries no order-item id. An order lists a SKU once per line, so order id + SKU is unique and stable
    across reports; should a SKU repeat within one order, its n-th row (file order) gets ``/<n>`` appended.
    The id never collides with Amazon's (all-digit) order-item ids, which contain no ``/``.
    """
    products = pc.coalesce(_blank_null(pc.utf8_trim_whitespace(skus)), _blank_null(pc.utf8_trim_whitespace(asins)), "")
    keys = pc.binary_join_element_wise(pc.utf8_trim_whitespace(order_ids), products, "/")
    seen: dict[str, int] = {}
    out = []
    for key in keys.to_pylist():
        count = seen[key] = seen.get(key, 0) + 1
        out.append(key if count == 1 else f"{key}/{count}")
    return pa.array(out, pa.string())


def _read_tsv(tsv: bytes) -> tuple[pa.Table, int]:
    """Every column as text (no type inference, no quoting: Amazon's flat files are plain tab-separated)."""
    header = tsv.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", "replace")
    names = [name.strip() for name in header.split("\t")]
    if not header.strip():
        return pa.table({name: pa.array([], pa.string()) for name in (*_KEY, "sku", "asin")}), 0
    malformed = 0

    def skip(_row) -> str:
        nonlocal malformed
        malformed += 1
        return "skip"

    try:
        table = csv.read_csv(
            io.BytesIO(tsv),
            read_options=csv.ReadOptions(column_names=names, skip_rows=1, use_threads=True),
            parse_options=csv.ParseOptions(delimiter="\t", quote_char=False, invalid_row_handler=skip),
            convert_options=csv.ConvertOptions(
                column_types={name: pa.string() for name in names}, strings_can_be_null=False, quoted_strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as error:
        raise SpApiResponseFormatError(f"the orders report is not a readable TSV: {str(error).splitlines()[0]}") from None
    return table, malformed


def _first_row_per_order(table: pa.Table) -> pa.Array:
    """Indices of the first row of every (amazon-order-id, last-updated-date), in file order."""
    keys = pc.binary_join_element_wise(
        pc.utf8_trim_whitespace(table["amazon-order-id"]), pc.utf8_trim_whitespace(table["last-updated-date"]), "\t"
    )
    firsts: dict[str, int] = {}
    for index, key in enumerate(keys.to_pylist()):
        firsts.setdefault(key, index)
    return pa.array(list(firsts.values()), pa.int64())


def _marketplaces(sales_channels: pa.Array, marketplace_ids: Sequence[str]) -> pa.Array:
    """The marketplace of each order: the one its sales-channel names among those asked for, else the only one
    asked for; null for a Non-Amazon order of a report over several marketplaces."""
    only = marketplace_ids[0] if len(marketplace_ids) == 1 else None
    known = {name: mid for name, mid in MARKETPLACE_OF_SALES_CHANNEL.items() if mid in marketplace_ids}
    return _vocabulary_exact(sales_channels, known, only)


def _vocabulary_exact(values: pa.Array, mapping: dict[str, str], default: str | None) -> pa.Array:
    encoded = values.dictionary_encode()
    mapped = [mapping.get(text.strip(), default) if text is not None else default for text in encoded.dictionary.to_pylist()]
    return pa.array(mapped, pa.string()).take(encoded.indices)


def _column(table: pa.Table, name: str) -> pa.Array:
    """A report column as one text array (all null when the report lacks it)."""
    if name not in table.column_names:
        return pa.nulls(table.num_rows, pa.string())
    return table[name].combine_chunks()


def _blank_null(text: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    return pc.if_else(pc.equal(pc.utf8_trim_whitespace(text), ""), pa.scalar(None, pa.string()), text)


def _vocabulary(values: pa.Array, mapping: dict[str, str]) -> pa.Array:
    """MWS spellings of report values (case, spaces, '-' and '_' forgiven); unknown values kept as sent."""
    encoded = values.dictionary_encode()
    dictionary = encoded.dictionary.to_pylist()
    spelled = [
        mapping.get("".join(ch for ch in text.upper() if ch.isalnum()), text.strip()) if text is not None else None
        for text in dictionary
    ]
    return pa.array(spelled, pa.string()).take(encoded.indices)
