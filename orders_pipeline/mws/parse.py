"""lxml → raw column values → typed pyarrow Tables, for ListOrders / GetOrder and ListOrderItems bodies.

Each body is parsed and checked at once (envelope, required elements), but its records are left as XML bytes
(a `RecordFragment`) when the vectorised reader can read them; a `TableBuilder` then reads the records of many
bodies in one numpy/Arrow pass and converts them to Arrow together, so no element costs a Python step. Bodies
the vectorised reader cannot vouch for are read by the Python walk instead, at once or when building.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

import pyarrow as pa

from orders_pipeline.mws.errors import MwsResponseFormatError
from orders_pipeline.mws.schema import (
    ORDER_COLUMNS,
    ORDER_ITEM_COLUMNS,
    ORDER_ITEMS_SCHEMA,
    ORDERS_SCHEMA,
    Column,
)
from orders_pipeline.mws.fragments import FragmentRow, RecordFragment, raw_columns
from orders_pipeline.mws.values import convert_columns, decode_timestamp
from orders_pipeline.mws.walk import Row, read_record
from orders_pipeline.mws.xml import parse_xml

ORDER_ID_INDEX = [c.name for c in ORDER_COLUMNS].index("amazon_order_id")
ORDER_LAST_UPDATE_INDEX = [c.name for c in ORDER_COLUMNS].index("last_update_date")
ORDER_EMAIL_HASH_INDEX = [c.name for c in ORDER_COLUMNS].index("buyer_email_sha256")
ITEM_ORDER_ID_INDEX = [c.name for c in ORDER_ITEM_COLUMNS].index("amazon_order_id")
ITEM_ORDER_LAST_UPDATE_INDEX = [c.name for c in ORDER_ITEM_COLUMNS].index("order_last_update_date")

_START_TAG = re.compile(rb"<[A-Za-z_]")
_NS_SCAN_BYTES = 1024
_ORDER_RESPONSES = ("ListOrdersResponse", "ListOrdersByNextTokenResponse", "GetOrderResponse")
_ITEM_RESPONSES = ("ListOrderItemsResponse", "ListOrderItemsByNextTokenResponse")
_ORDER_FIELDS = tuple(ORDER_COLUMNS)
_ITEM_FIELDS = tuple(ORDER_ITEM_COLUMNS)
_ORDER_REQUIRED = [(index, column) for index, column in enumerate(ORDER_COLUMNS) if column.required]
_ITEM_REQUIRED = [(index, column) for index, column in enumerate(ORDER_ITEM_COLUMNS) if column.required]
_UTF8 = ("UTF-8", "utf-8")


class TableBuilder:
    """Collects raw rows from many pages and turns them into one typed table at a time."""

    def __init__(self, columns: tuple[Column, ...], schema: pa.Schema) -> None:
        self.columns = columns
        self.schema = schema
        self.rows: list[Row] = []
        self.quarantined_values = 0

    def extend(self, rows: list[Row]) -> None:
        """Queue rows for the next table."""
        self.rows.extend(rows)

    def __len__(self) -> int:
        return len(self.rows)

    def build(self) -> pa.Table:
        """Convert the queued rows into a table of `schema` and start afresh; counts quarantined values."""
        rows, self.rows = self.rows, []
        arrays, flags, quarantined = convert_columns(self.columns, raw_columns(self.columns, rows), len(rows))
        self.quarantined_values += quarantined
        return pa.Table.from_arrays([*arrays, *flags], schema=self.schema)


def orders_builder() -> TableBuilder:
    """A builder of the `orders` table."""
    return TableBuilder(_ORDER_FIELDS, ORDERS_SCHEMA)


def order_items_builder() -> TableBuilder:
    """A builder of the `order_items` table."""
    return TableBuilder(_ITEM_FIELDS, ORDER_ITEMS_SCHEMA)


def _typed(builder: TableBuilder, rows: list[Row]) -> tuple[pa.Table, int]:
    """Rows of one page as a typed table, and how many of their values were quarantined."""
    builder.extend(rows)
    return builder.build(), builder.quarantined_values


@dataclass(frozen=True)
class OrdersPage:
    """One ListOrders / ListOrdersByNextToken / GetOrder result."""

    rows: list[Row]
    next_token: str | None
    last_updated_before: datetime | None
    request_id: str | None

    @cached_property
    def _typed(self) -> tuple[pa.Table, int]:
        return _typed(orders_builder(), self.rows)

    @property
    def table(self) -> pa.Table:
        """This page alone as a typed table (the pipeline batches pages with a TableBuilder instead)."""
        return self._typed[0]

    @property
    def quarantined_values(self) -> int:
        """Values on this page that could not be decoded."""
        return self._typed[1]


@dataclass(frozen=True)
class OrderItemsPage:
    """One ListOrderItems / ListOrderItemsByNextToken result."""

    rows: list[Row]
    next_token: str | None
    amazon_order_id: str
    request_id: str | None

    @cached_property
    def _typed(self) -> tuple[pa.Table, int]:
        return _typed(order_items_builder(), self.rows)

    @property
    def table(self) -> pa.Table:
        """This page alone as a typed table."""
        return self._typed[0]

    @property
    def quarantined_values(self) -> int:
        """Values on this page that could not be decoded."""
        return self._typed[1]


def parse_orders_page(body: bytes, *, buyer_email_salt: str | None = None) -> OrdersPage:
    """Read the orders and the paging envelope of a ListOrders-family or GetOrder body."""
    body = _without_default_namespace(body)
    root = parse_xml(body)
    ns, name = _split_tag(root.tag)
    if name not in _ORDER_RESPONSES:
        raise MwsResponseFormatError(f"expected a ListOrders or GetOrder response, got <{name}>")
    top = _children(root)
    result_name = name.replace("Response", "Result")
    envelope = _children(_required(top, ns, result_name, name))
    orders = _required(envelope, ns, "Orders", result_name)
    fragment = _fragment(body, root, ns, orders, "Order")
    email_tag = f"{ns}BuyerEmail" if buyer_email_salt else None
    rows: list[Row] = []
    for order in orders.iterchildren(f"{ns}Order"):
        row = _read(order, fragment, _ORDER_FIELDS, _ORDER_REQUIRED, ns)
        if email_tag is not None:
            row[ORDER_EMAIL_HASH_INDEX] = _hash_email(order.findtext(email_tag), buyer_email_salt)
        _check_required(row, _ORDER_REQUIRED, "Order")
        rows.append(row)
    bound_text = _findtext(envelope, f"{ns}LastUpdatedBefore") or _findtext(envelope, f"{ns}CreatedBefore")
    return OrdersPage(
        rows=rows,
        next_token=_clean_text(_findtext(envelope, f"{ns}NextToken")),
        last_updated_before=_decode_bound(bound_text),
        request_id=_request_id(top, ns),
    )


def parse_order_items_page(body: bytes) -> OrderItemsPage:
    """Read the items and the paging envelope of a ListOrderItems-family body."""
    body = _without_default_namespace(body)
    root = parse_xml(body)
    ns, name = _split_tag(root.tag)
    if name not in _ITEM_RESPONSES:
        raise MwsResponseFormatError(f"expected a ListOrderItems response, got <{name}>")
    top = _children(root)
    result_name = name.replace("Response", "Result")
    envelope = _children(_required(top, ns, result_name, name))
    order_id = _clean_text(_findtext(envelope, f"{ns}AmazonOrderId"))
    if not order_id:
        raise MwsResponseFormatError(f"<{name}> has no AmazonOrderId")
    items = _required(envelope, ns, "OrderItems", result_name)
    fragment = _fragment(body, root, ns, items, "OrderItem")
    rows: list[Row] = []
    for item in items.iterchildren(f"{ns}OrderItem"):
        row = _read(item, fragment, _ITEM_FIELDS, _ITEM_REQUIRED, ns)
        row[ITEM_ORDER_ID_INDEX] = order_id
        _check_required(row, _ITEM_REQUIRED, "OrderItem")
        rows.append(row)
    return OrderItemsPage(
        rows=rows,
        next_token=_clean_text(_findtext(envelope, f"{ns}NextToken")),
        amazon_order_id=order_id,
        request_id=_request_id(top, ns),
    )


def _without_default_namespace(body: bytes) -> bytes:
    """The body minus the root's default namespace declaration: short tags cost less to read than `{ns}Tag`.

    Only a speed-up, looked for in the first start tag alone: a body it misses parses as before, namespaced.
    """
    first = _START_TAG.search(body, 0, _NS_SCAN_BYTES)
    if first is None:
        return body
    tag_end = body.find(b">", first.start())
    start = body.find(b' xmlns="', first.start(), tag_end)
    end = body.find(b'"', start + 8, tag_end) if start >= 0 else -1
    return body if end < 0 else body[:start] + body[end + 1 :]


def _fragment(body: bytes, root, ns: str, container, record_tag: str) -> RecordFragment | None:
    """The records element's content as bytes, if the vectorised reader may read it: a UTF-8 body, no namespaces
    in scope, and the element's start and end tags found exactly once, with no attributes."""
    if ns or container.nsmap or root.getroottree().docinfo.encoding not in _UTF8:
        return None
    name = _split_tag(container.tag)[1].encode()
    start, end = body.find(b"<" + name + b">"), body.rfind(b"</" + name + b">")
    if start < 0 or end < start or body.find(b"<" + name) != start or body.rfind(b"</" + name) != end:
        return None
    if body.find(b"<" + name, start + 1) >= 0 or body.find(b"</" + name, 0, end) >= 0:
        return None
    return RecordFragment(body[start + len(name) + 2 : end], record_tag)


def _read(record, fragment: RecordFragment | None, columns: tuple[Column, ...], required, ns: str) -> Row:
    """A record's row: walked now, or (with a fragment) only its required elements now and the rest later."""
    if fragment is None:
        return read_record(record, columns, ns)
    row = FragmentRow([None] * len(columns))
    row.fragment, row.position = fragment, fragment.record_count
    fragment.record_count += 1
    for index, column in required:
        last = None
        for last in record.iterchildren(column.path[0]):
            pass
        row[index] = None if last is None else last.text
    return row


def _check_required(row: Row, required: list[tuple[int, Column]], record: str) -> None:
    for index, column in required:
        if not (row[index] or "").strip():
            raise MwsResponseFormatError(f"an <{record}> has no {'/'.join(column.path)}, which MWS always sends")


def _children(element) -> dict:
    """The child elements of an envelope element by tag (a handful: one pass beats repeated find())."""
    return {child.tag: child for child in element}


def _required(children: dict, ns: str, name: str, parent: str):
    child = children.get(f"{ns}{name}")
    if child is None:
        raise MwsResponseFormatError(f"<{parent}> has no <{name}> element (truncated body?)")
    return child


def _findtext(children: dict, tag: str) -> str | None:
    """Like Element.findtext on the parent: '' for an empty element, None for a missing one."""
    child = children.get(tag)
    return None if child is None else child.text or ""


def _split_tag(tag: str) -> tuple[str, str]:
    """('{namespace}', 'LocalName') of a tag, the namespace part kept in Clark notation for lookups."""
    if tag.startswith("{"):
        end = tag.index("}") + 1
        return tag[:end], tag[end:]
    return "", tag


def _request_id(top: dict, ns: str) -> str | None:
    metadata = top.get(f"{ns}ResponseMetadata")
    return _clean_text(_findtext(_children(metadata), f"{ns}RequestId")) if metadata is not None else None


def _clean_text(text: str | None) -> str | None:
    return text.strip() or None if text is not None else None


def _decode_bound(text: str | None) -> datetime | None:
    if text is None:
        return None
    decoded = decode_timestamp(text)
    if decoded is None:
        raise MwsResponseFormatError(f"the echoed window bound {text.strip()!r} is not a timestamp")
    return decoded


def _hash_email(email: str | None, salt: str) -> str | None:
    if not email or not email.strip():
        return None
    return hashlib.sha256(f"{salt}:{email.strip().lower()}".encode()).hexdigest()
