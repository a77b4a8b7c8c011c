"""lxml → raw column values → typed pyarrow Tables, for ListOrders / GetOrder and ListOrderItems bodies.

Pages are read into the element texts of their records (one row of texts per record), and the
texts of many pages are converted to Arrow in one vectorised pass (`TableBuilder`), so small item documents do
not each pay for a table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property, lru_cache

import pyarrow as pa

from orders_pipeline.sources.mws.errors import MwsResponseFormatError
from orders_pipeline.sources.mws.records import LIST, RecordLayout, Texts, column_arrays
from orders_pipeline.sources.mws.schema import ORDER_COLUMNS, ORDER_ITEM_COLUMNS, Column
from orders_pipeline.sources.mws.xml import parse_xml
from orders_pipeline.sources.personal_data import hash_buyer_email
from orders_pipeline.sources.raw_schema import ORDER_ITEMS_SCHEMA, ORDERS_SCHEMA
from orders_pipeline.sources.values import convert_columns, decode_timestamp, text_order

ORDER_ID_INDEX = [c.name for c in ORDER_COLUMNS].index("amazon_order_id")
ORDER_LAST_UPDATE_INDEX = [c.name for c in ORDER_COLUMNS].index("last_update_date")
ORDER_EMAIL_HASH_INDEX = [c.name for c in ORDER_COLUMNS].index("buyer_email_sha256")
ITEM_ORDER_ID_INDEX = [c.name for c in ORDER_ITEM_COLUMNS].index("amazon_order_id")
ITEM_ORDER_LAST_UPDATE_INDEX = [c.name for c in ORDER_ITEM_COLUMNS].index("order_last_update_date")

_ENVELOPE_TAGS = ("NextToken", "LastUpdatedBefore", "CreatedBefore", "AmazonOrderId")
_NEXT_TOKEN, _LAST_UPDATED_BEFORE, _CREATED_BEFORE, _ORDER_ID, _REQUEST_ID = range(len(_ENVELOPE_TAGS) + 1)
_ORDER_RESPONSES = ("ListOrdersResponse", "ListOrdersByNextTokenResponse", "GetOrderResponse")
_ITEM_RESPONSES = ("ListOrderItemsResponse", "ListOrderItemsByNextTokenResponse")
_ORDER_REQUIRED = [(index, column) for index, column in enumerate(ORDER_COLUMNS) if column.required]
_ITEM_REQUIRED = [(index, column) for index, column in enumerate(ORDER_ITEM_COLUMNS) if column.required]


class TableBuilder:
    """Collects the records of many pages and turns them into one typed table at a time."""

    def __init__(self, columns: list[Column], schema: pa.Schema) -> None:
        self.columns = columns
        self.schema = schema
        self.pages: list[Texts] = []
        self.rows = 0
        self.quarantined_values = 0

    def extend(self, records: Texts) -> None:
        """Queue a page's records for the next table."""
        self.pages.append(records)
        self.rows += len(records)

    def __len__(self) -> int:
        return self.rows

    def build(self) -> pa.Table:
        """Convert the queued records into a table of `schema` and start afresh; counts quarantined values."""
        pages, rows, self.pages, self.rows = self.pages, self.rows, [], 0
        texts, lists = column_arrays(pages, text_order(self.columns)) if rows else (pa.array([], pa.string()), {})
        arrays, flags, quarantined = convert_columns(self.columns, texts, lists, rows)
        self.quarantined_values += quarantined
        return pa.Table.from_arrays([*arrays, *flags], schema=self.schema)


def orders_builder() -> TableBuilder:
    """A builder of the `orders` table."""
    return TableBuilder(ORDER_COLUMNS, ORDERS_SCHEMA)


def order_items_builder() -> TableBuilder:
    """A builder of the `order_items` table."""
    return TableBuilder(ORDER_ITEM_COLUMNS, ORDER_ITEMS_SCHEMA)


class _TypedPage:
    """What a page of records offers besides its envelope: its records as a typed table, decoded once."""

    records: Texts
    new_builder: Callable[[], TableBuilder]  # set by each page class

    @cached_property
    def _typed(self) -> tuple[pa.Table, int]:
        builder = self.new_builder()
        builder.extend(self.records)
        return builder.build(), builder.quarantined_values

    @property
    def table(self) -> pa.Table:
        """This page alone as a typed table (the pipeline batches pages with a TableBuilder instead)."""
        return self._typed[0]

    @property
    def quarantined_values(self) -> int:
        """Values on this page that could not be decoded."""
        return self._typed[1]


@dataclass
class OrdersPage(_TypedPage):
    """One ListOrders / ListOrdersByNextToken / GetOrder result."""

    records: Texts  # the element texts of its orders, by column
    next_token: str | None
    last_updated_before: datetime | None
    request_id: str | None
    new_builder = staticmethod(orders_builder)


@dataclass
class OrderItemsPage(_TypedPage):
    """One ListOrderItems / ListOrderItemsByNextToken result."""

    records: Texts  # the element texts of its items, by column
    next_token: str | None
    amazon_order_id: str
    request_id: str | None
    new_builder = staticmethod(order_items_builder)


def parse_orders_page(body: bytes, *, buyer_email_salt: str | None = None) -> OrdersPage:
    """Read the orders and the paging envelope of a ListOrders-family or GetOrder body."""
    root = parse_xml(body)
    shape = _orders_shape(root.tag, with_email=bool(buyer_email_salt))
    records, depth = shape.records.read_records(root)
    shape.require(depth)
    _check_required(records, _ORDER_REQUIRED, "Order")
    if buyer_email_salt:
        emails = records.column(ORDER_EMAIL_HASH_INDEX)
        records.set_column(ORDER_EMAIL_HASH_INDEX, [hash_buyer_email(email, buyer_email_salt) for email in emails])
    envelope = shape.envelope.read_one(root)
    return OrdersPage(
        records=records,
        next_token=_clean_text(envelope[_NEXT_TOKEN]),
        last_updated_before=_decode_bound(envelope[_LAST_UPDATED_BEFORE] or envelope[_CREATED_BEFORE]),
        request_id=_clean_text(envelope[_REQUEST_ID]),
    )


def parse_order_items_page(body: bytes) -> OrderItemsPage:
    """Read the items and the paging envelope of a ListOrderItems-family body."""
    root = parse_xml(body)
    shape = _items_shape(root.tag)
    records, depth = shape.records.read_records(root)
    shape.require(depth, needed=1)  # the Result element, before its AmazonOrderId is looked for
    envelope = shape.envelope.read_one(root)
    order_id = _clean_text(envelope[_ORDER_ID])
    if not order_id:
        raise MwsResponseFormatError(f"<{shape.name}> has no AmazonOrderId")
    shape.require(depth)
    records.fill(ITEM_ORDER_ID_INDEX, order_id)
    _check_required(records, _ITEM_REQUIRED, "OrderItem")
    return OrderItemsPage(
        records=records,
        next_token=_clean_text(envelope[_NEXT_TOKEN]),
        amazon_order_id=order_id,
        request_id=_clean_text(envelope[_REQUEST_ID]),
    )


@dataclass(frozen=True)
class _Shape:
    """How to read a response with a given root tag: its records (at root/Result/list/record) and its envelope."""

    name: str  # the root element's local name
    path: tuple[str, ...]  # local names of the steps to the records' parent, for messages
    records: RecordLayout
    envelope: RecordLayout

    def require(self, found: int, needed: int | None = None) -> None:
        """Refuse a body in which fewer than `needed` (default: all) steps of the path to its records were `found`."""
        if found < (len(self.path) if needed is None else needed):
            parent = self.path[found - 1] if found else self.name
            raise MwsResponseFormatError(f"<{parent}> has no <{self.path[found]}> element (truncated body?)")


@lru_cache(maxsize=32)
def _orders_shape(root_tag: str, *, with_email: bool) -> _Shape:
    """The shape of a ListOrders-family or GetOrder response; the email read where its salted hash goes if asked."""
    ns, name = _split_tag(root_tag)
    if name not in _ORDER_RESPONSES:
        raise MwsResponseFormatError(f"expected a ListOrders or GetOrder response, got <{name}>")
    layout = _layout(ORDER_COLUMNS, ns)
    if with_email:
        layout[f"{ns}BuyerEmail"] = ORDER_EMAIL_HASH_INDEX
    return _shape(ns, name, ("Orders", "Order"), layout, len(ORDER_COLUMNS))


@lru_cache(maxsize=32)
def _items_shape(root_tag: str) -> _Shape:
    """The shape of a ListOrderItems-family response."""
    ns, name = _split_tag(root_tag)
    if name not in _ITEM_RESPONSES:
        raise MwsResponseFormatError(f"expected a ListOrderItems response, got <{name}>")
    return _shape(ns, name, ("OrderItems", "OrderItem"), _layout(ORDER_ITEM_COLUMNS, ns), len(ORDER_ITEM_COLUMNS))


def _shape(ns: str, name: str, records: tuple[str, str], layout: dict, width: int) -> _Shape:
    result_name = name.replace("Response", "Result")
    list_name, record_name = records
    path = (result_name, list_name)
    envelope_fields = {f"{ns}{tag}": index for index, tag in enumerate(_ENVELOPE_TAGS)}
    envelope = {f"{ns}{result_name}": envelope_fields, f"{ns}ResponseMetadata": {f"{ns}RequestId": _REQUEST_ID}}
    return _Shape(
        name=name,
        path=path,
        records=RecordLayout(layout, width, path=tuple(f"{ns}{tag}" for tag in path), record_tag=f"{ns}{record_name}"),
        envelope=RecordLayout(envelope, len(_ENVELOPE_TAGS) + 1),
    )


def _layout(columns: list[Column], ns: str) -> dict:
    """Map namespaced tags to column positions: ints for leaves, nested dicts for groups, tuples for lists."""
    layout: dict = {}
    for index, column in enumerate(columns):
        if not column.path:
            continue
        if column.kind.name == "STRING_LIST":
            parent, _member = column.path
            layout[f"{ns}{parent}"] = (LIST, index)
            continue
        node = layout
        for tag in column.path[:-1]:
            node = node.setdefault(f"{ns}{tag}", {})
        node[f"{ns}{column.path[-1]}"] = index
    return layout


def _check_required(records: Texts, required: list[tuple[int, Column]], record: str) -> None:
    for index, column in required:
        if records.has_blank(index):
            raise MwsResponseFormatError(f"an <{record}> has no {'/'.join(column.path)}, which MWS always sends")


def _split_tag(tag: str) -> tuple[str, str]:
    """('{namespace}', 'LocalName') of a tag, the namespace part kept in Clark notation for lookups."""
    if tag.startswith("{"):
        end = tag.index("}") + 1
        return tag[:end], tag[end:]
    return "", tag


def _clean_text(text: str | None) -> str | None:
    return text.strip() or None if text is not None else None


def _decode_bound(text: str | None) -> datetime | None:
    if text is None:
        return None
    decoded = decode_timestamp(text)
    if decoded is None:
        raise MwsResponseFormatError(f"the echoed window bound {text.strip()!r} is not a timestamp")
    return decoded


def parse_service_status(body: bytes) -> str:
    """The <Status> of a GetServiceStatus answer (GREEN, GREEN_I, YELLOW or RED)."""
    root = parse_xml(body)
    if not isinstance(root.tag, str) or not root.tag.endswith("GetServiceStatusResponse"):
        raise MwsResponseFormatError(f"expected <GetServiceStatusResponse>, got <{root.tag}>")
    for elem in root.iter():
        if isinstance(elem.tag, str) and elem.tag.rsplit("}", 1)[-1] == "Status":
            status = (elem.text or "").strip()
            if status:
                return status
    raise MwsResponseFormatError("GetServiceStatus response has no <Status>")

