"""lxml → raw column values → typed pyarrow Tables, for ListOrders / GetOrder and ListOrderItems bodies.

Pages are read into plain rows of element text (cheap), and rows from many pages are converted to Arrow
in one vectorised pass (`TableBuilder`), so small item documents do not each pay for a table.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property, lru_cache

import pyarrow as pa

from orders_pipeline.mws.errors import MwsResponseFormatError
from orders_pipeline.mws.schema import (
    ORDER_COLUMNS,
    ORDER_ITEM_COLUMNS,
    ORDER_ITEMS_SCHEMA,
    ORDERS_SCHEMA,
    Column,
)
from orders_pipeline.mws.values import convert_columns, decode_timestamp
from orders_pipeline.mws.xml import parse_xml

Row = list  # raw element text (or list of texts) per column, in schema column order

ORDER_ID_INDEX = [c.name for c in ORDER_COLUMNS].index("amazon_order_id")
ORDER_LAST_UPDATE_INDEX = [c.name for c in ORDER_COLUMNS].index("last_update_date")
ORDER_EMAIL_HASH_INDEX = [c.name for c in ORDER_COLUMNS].index("buyer_email_sha256")
ITEM_ORDER_ID_INDEX = [c.name for c in ORDER_ITEM_COLUMNS].index("amazon_order_id")
ITEM_ORDER_LAST_UPDATE_INDEX = [c.name for c in ORDER_ITEM_COLUMNS].index("order_last_update_date")

_LIST = "list"
_START_TAG = re.compile(rb"<[A-Za-z_]")
_NS_SCAN_BYTES = 1024
_ORDER_RESPONSES = ("ListOrdersResponse", "ListOrdersByNextTokenResponse", "GetOrderResponse")
_ITEM_RESPONSES = ("ListOrderItemsResponse", "ListOrderItemsByNextTokenResponse")
_ORDER_REQUIRED = [(index, column) for index, column in enumerate(ORDER_COLUMNS) if column.required]
_ITEM_REQUIRED = [(index, column) for index, column in enumerate(ORDER_ITEM_COLUMNS) if column.required]


class TableBuilder:
    """Collects raw rows from many pages and turns them into one typed table at a time."""

    def __init__(self, columns: list[Column], schema: pa.Schema) -> None:
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
        values = list(zip(*rows)) if rows else [() for _ in self.columns]
        arrays, flags, quarantined = convert_columns(self.columns, values, len(rows))
        self.quarantined_values += quarantined
        return pa.Table.from_arrays([*arrays, *flags], schema=self.schema)


def orders_builder() -> TableBuilder:
    """A builder of the `orders` table."""
    return TableBuilder(ORDER_COLUMNS, ORDERS_SCHEMA)


def order_items_builder() -> TableBuilder:
    """A builder of the `order_items` table."""
    return TableBuilder(ORDER_ITEM_COLUMNS, ORDER_ITEMS_SCHEMA)


def _typed(builder: TableBuilder, rows: list[Row]) -> tuple[pa.Table, int]:
    """Rows of one page as a typed table, and how many of their values were quarantined."""
    builder.extend([list(row) for row in rows])
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
    root = parse_xml(_without_default_namespace(body))
    ns, name = _split_tag(root.tag)
    if name not in _ORDER_RESPONSES:
        raise MwsResponseFormatError(f"expected a ListOrders or GetOrder response, got <{name}>")
    top = _children(root)
    result_name = name.replace("Response", "Result")
    envelope = _children(_required(top, ns, result_name, name))
    orders = _required(envelope, ns, "Orders", result_name)
    layout = _order_layout(ns)
    width = len(ORDER_COLUMNS)
    email_tag = f"{ns}BuyerEmail" if buyer_email_salt else None
    rows: list[Row] = []
    for order in orders.iterchildren(f"{ns}Order"):
        row = _read_record(order, layout, width)
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
    root = parse_xml(_without_default_namespace(body))
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
    layout = _item_layout(ns)
    width = len(ORDER_ITEM_COLUMNS)
    rows: list[Row] = []
    for item in items.iterchildren(f"{ns}OrderItem"):
        row = _read_record(item, layout, width)
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


def _read_record(record, layout: dict, width: int) -> Row:
    """Copy the text of every known element of one record into a row; unknown elements are ignored."""
    row: Row = [None] * width
    _fill(record, layout, row)
    return row


def _fill(element, layout: dict, row: Row) -> None:
    for child in element:
        target = layout.get(child.tag)
        if target is None:
            continue
        if target.__class__ is int:
            row[target] = child.text
        elif target.__class__ is dict:
            for grandchild in child:  # one level inline: money and address groups are common, calls are not free
                inner = target.get(grandchild.tag)
                if inner.__class__ is int:
                    row[inner] = grandchild.text
                elif inner is not None:
                    _fill(grandchild, inner, row)
        else:
            row[target[1]] = [grandchild.text for grandchild in child]


@lru_cache(maxsize=8)
def _order_layout(ns: str) -> dict:
    return _layout(ORDER_COLUMNS, ns)


@lru_cache(maxsize=8)
def _item_layout(ns: str) -> dict:
    return _layout(ORDER_ITEM_COLUMNS, ns)


def _layout(columns: list[Column], ns: str) -> dict:
    """Map namespaced tags to column positions: ints for leaves, nested dicts for groups, tuples for lists."""
    layout: dict = {}
    for index, column in enumerate(columns):
        if not column.path:
            continue
        if column.kind.name == "STRING_LIST":
            parent, _member = column.path
            layout[f"{ns}{parent}"] = (_LIST, index)
            continue
        node = layout
        for tag in column.path[:-1]:
            node = node.setdefault(f"{ns}{tag}", {})
        node[f"{ns}{column.path[-1]}"] = index
    return layout


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
