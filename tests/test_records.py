"""The record walk reads the texts and Arrow columns of simulator bodies and of awkward XML."""


import pyarrow as pa
import pytest
import requests

from orders_pipeline.sources.mws.client import MwsOrdersClient
from orders_pipeline.sources.mws.parse import (
    ORDER_ID_INDEX,
    TableBuilder,
    _items_shape,
    _orders_shape,
    order_items_builder,
    orders_builder,
)
from orders_pipeline.sources.mws.records import LIST, RecordLayout, Texts, column_arrays
from orders_pipeline.sources.mws.xml import parse_xml
from orders_pipeline.simulator import MwsSimulator, SimulatorConfig
from orders_pipeline.simulator.config import Faults
from tests.test_client import DAY, DEMO_MARKETPLACE_IDS, NEXT_DAY, SIM_CREDS

NS = "https://mws.amazonservices.com/Orders/2013-09-01"


class RecordingSession(requests.Session):
    """A requests.Session that keeps every 200 response body it receives."""

    def __init__(self) -> None:
        super().__init__()
        self.bodies: list[bytes] = []

    def post(self, url, data=None, **kwargs) -> requests.Response:  # type: ignore[override]
        response = super().post(url, data=data, **kwargs)
        if response.status_code == 200:
            self.bodies.append(response.content)
        return response


def text_positions(layout: RecordLayout) -> list[int]:
    """Every text (not list) position of a layout's rows."""
    return [index for index in range(layout.width) if index not in layout.lists]


def columns_of(pages, layout: RecordLayout) -> list[list]:
    """Every column of the pages' texts, gathered into Arrow and back to Python lists."""
    order = text_positions(layout)
    texts, lists = column_arrays(pages, order)
    length = sum(map(len, pages))
    columns = {index: texts.slice(slot * length, length).to_pylist() for slot, index in enumerate(order)}
    columns.update((index, array.to_pylist()) for index, array in lists.items())
    return [columns[index] for index in range(layout.width)]


def table_of(builder: TableBuilder, pages) -> pa.Table:
    """The typed table of some pages' texts."""
    for texts in pages:
        builder.extend(texts)
    return builder.build()


def rows_of(texts: Texts, width: int) -> list[list]:
    """The texts as one row per record."""
    return [list(row) for row in zip(*(texts.column(index) for index in range(width)))] if len(texts) else []


def read_rows(layout: RecordLayout, root) -> tuple[list[list], int]:
    """The rows the walk reads, checked against the Arrow columns it gives for them (two pages of them)."""
    texts, depth = layout.read_records(root)
    rows = rows_of(texts, layout.width)
    if rows:
        assert columns_of([texts, texts], layout) == [list(column) * 2 for column in zip(*rows)]
    return rows, depth


def test_a_messy_simulated_day_reads_into_every_column_and_one_typed_table():
    session = RecordingSession()
    config = SimulatorConfig(orders_per_day=400, throttling=False, faults=Faults(messy_values=True))
    with MwsSimulator(config) as sim:
        client = MwsOrdersClient(sim.url, SIM_CREDS, DEMO_MARKETPLACE_IDS, session=session)
        order_ids = [oid for page in client.list_orders(DAY, NEXT_DAY) for oid in page.records.column(ORDER_ID_INDEX)]
        for order_id in order_ids:
            list(client.list_order_items(order_id))
    order_bodies = [body for body in session.bodies if b"<ListOrders" in body[:200]]
    item_bodies = [body for body in session.bodies if b"<ListOrderItems" in body[:200]]
    assert len(order_bodies) >= 3 and len(item_bodies) >= len(order_ids) >= 300  # some orders page their items
    walks = [(order_bodies, lambda tag: _orders_shape(tag, with_email=True), orders_builder),
             (item_bodies, _items_shape, order_items_builder)]
    read = {}
    for bodies, shape_of, builder in walks:
        pages = []
        for body in bodies:
            root = parse_xml(body)
            shape = shape_of(root.tag)
            rows, depth = read_rows(shape.records, root)
            assert depth == 2
            pages.append(shape.records.read_records(root)[0])
        table = table_of(builder(), pages)
        read[builder] = table
        assert table.num_rows == sum(map(len, pages))
    assert read[orders_builder].column("amazon_order_id").to_pylist() == order_ids
    assert read[order_items_builder].num_rows > len(order_ids)


AWKWARD = """<Orders xmlns:o="urn:other">
  <Order>
    <Id>one</Id>
    <Empty></Empty><SelfClosed/>
    <Split>a<![CDATA[<b>]]>c&amp;d</Split>
    <Mixed>before<Inner>x</Inner>after</Mixed>
    <Group><Leaf>g1</Leaf><Deeper><Leaf2>deep</Leaf2></Deeper><Unknown>u</Unknown></Group>
    <Tags><T>t1</T><T/><Other>t3</Other></Tags>
    <o:Id>other namespace</o:Id>
    <Unlisted>ignored</Unlisted>
    <Id>repeated: the last wins</Id>
    <Unicode>Zürich – 東京 🚚</Unicode>
  </Order>
  <NotAnOrder><Id>skipped</Id></NotAnOrder>
  <Order><Group/><Tags/></Order>
  <Order>  <Id>  padded  </Id>  </Order>
</Orders>"""

AWKWARD_LAYOUT = {
    "Id": 0,
    "Empty": 1,
    "SelfClosed": 2,
    "Split": 3,
    "Mixed": 4,
    "Group": {"Leaf": 5, "Deeper": {"Leaf2": 6}},
    "Tags": (LIST, 7),
    "{urn:other}Id": 8,
    "Unicode": 9,
}


def test_awkward_xml_reads_as_lxml_sees_it():
    rows, depth = read_rows(RecordLayout(AWKWARD_LAYOUT, 10, record_tag="Order"), parse_xml(AWKWARD.encode()))
    assert depth == 0
    assert rows[0] == [
        "repeated: the last wins",
        None,  # lxml: no text node at all
        None,
        "a<b>c&d",
        "before",
        "g1",
        "deep",
        ["t1", None, "t3"],
        "other namespace",
        "Zürich – 東京 🚚",
    ]
    assert rows[1] == [None, None, None, None, None, None, None, [], None, None]
    assert rows[2][0] == "  padded  " and len(rows) == 3


def test_texts_can_be_filled_and_set_from_the_context():
    layout = RecordLayout(AWKWARD_LAYOUT, 11, record_tag="Order")
    texts, _ = layout.read_records(parse_xml(AWKWARD.encode()))
    texts.fill(10, "from the context – ü")
    texts.set_column(1, ["a", None, ""])
    with pytest.raises(TypeError, match="holds lists"):
        texts.fill(7, "not a list")
    with pytest.raises(ValueError, match="2 texts for 3 records"):
        texts.set_column(1, ["a", "b"])
    with pytest.raises(ValueError, match="7 is not a text column of a row of 11"):
        column_arrays([texts], [0, 7])
    assert texts.column(10) == ["from the context – ü"] * 3
    assert texts.column(1) == ["a", None, ""]
    assert columns_of([texts], layout)[10] == ["from the context – ü"] * 3


def test_blank_texts_are_what_str_strip_makes_empty():
    body = "<R><Rec><Id> x </Id><Pad>\u00a0\u2003\t</Pad><Name>é </Name><Tags/></Rec>"
    body += "<Rec><Id>y</Id><Pad>\u3000z</Pad><Name> ü</Name></Rec></R>"
    root = parse_xml(body.encode())
    texts, _ = RecordLayout({"Id": 0, "Pad": 1, "Name": 2, "Tags": (LIST, 3)}, 5, record_tag="Rec").read_records(root)
    assert [texts.has_blank(index) for index in (0, 1, 2, 4)] == [False, True, False, True]
    with pytest.raises(TypeError, match="holds lists"):
        texts.has_blank(3)


def test_a_namespaced_record_tag_does_not_match_records_without_that_namespace():
    layout = RecordLayout(AWKWARD_LAYOUT, 10, record_tag=f"{{{NS}}}Order")
    assert read_rows(layout, parse_xml(AWKWARD.encode())) == ([], 0)


def test_the_path_to_the_records_reports_how_far_it_exists():
    root = parse_xml(b"<R><A><B><Rec><Id>1</Id></Rec><Rec><Id>2</Id></Rec></B></A><A><B><Rec><Id>3</Id></Rec></B></A></R>")
    for path, expected in [
        (("A", "B"), ([["1"], ["2"]], 2)),  # the first A is taken
        (("A", "Missing"), ([], 1)),
        (("Missing", "B"), ([], 0)),
    ]:
        assert read_rows(RecordLayout({"Id": 0}, 1, path=path, record_tag="Rec"), root) == expected
    layout = RecordLayout({"Id": 0}, 1, path=("A", "B"), record_tag="Rec")
    assert layout.read_one(root) == [None]
    assert layout.read_one(root.find("A/B/Rec")) == ["1"]
