"""The compiled record walk gives the Python walk's rows, on simulator bodies and on awkward XML."""


import pytest
import requests

from orders_pipeline.mws import records
from orders_pipeline.mws.client import MwsOrdersClient
from orders_pipeline.mws.parse import ORDER_ID_INDEX, _items_shape, _orders_shape
from orders_pipeline.mws.records import LIST, RecordLayout
from orders_pipeline.mws.xml import parse_xml
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


def both_walks(layout: RecordLayout) -> tuple[RecordLayout, RecordLayout]:
    python = RecordLayout(layout.layout, layout.width, path=layout.path, record_tag=layout.record_tag, compiled=False)
    return layout, python


def test_the_compiled_walk_is_built_for_this_lxml():
    # CI installs with a C compiler: a missing or mismatched build would silently cost half the parse speed
    assert records.COMPILED_UNAVAILABLE_BECAUSE is None
    shapes = [_orders_shape(f"{{{NS}}}ListOrdersResponse", with_email=False), _items_shape("ListOrderItemsResponse")]
    assert all(shape.records.is_compiled and shape.envelope.is_compiled for shape in shapes)


def test_both_walks_read_the_same_rows_from_a_messy_simulated_day():
    session = RecordingSession()
    config = SimulatorConfig(orders_per_day=400, throttling=False, faults=Faults(messy_values=True))
    with MwsSimulator(config) as sim:
        client = MwsOrdersClient(sim.url, SIM_CREDS, DEMO_MARKETPLACE_IDS, session=session)
        order_ids = [row[ORDER_ID_INDEX] for page in client.list_orders(DAY, NEXT_DAY) for row in page.rows]
        for order_id in order_ids:
            list(client.list_order_items(order_id))
    order_bodies = [body for body in session.bodies if b"<ListOrders" in body[:200]]
    item_bodies = [body for body in session.bodies if b"<ListOrderItems" in body[:200]]
    assert len(order_bodies) >= 3 and len(item_bodies) >= len(order_ids) >= 300  # some orders page their items
    checked = 0
    for bodies, shape_of in ((order_bodies, lambda tag: _orders_shape(tag, with_email=True)), (item_bodies, _items_shape)):
        for body in bodies:
            root = parse_xml(body)
            shape = shape_of(root.tag)
            compiled, python = both_walks(shape.records)
            rows, depth = compiled.read_records(root)
            assert (rows, depth) == python.read_records(root) and depth == 2
            compiled, python = both_walks(shape.envelope)
            assert compiled.read_one(root) == python.read_one(root)
            checked += len(rows)
    assert checked > 2 * len(order_ids)


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


def test_both_walks_agree_on_awkward_xml():
    compiled, python = both_walks(RecordLayout(AWKWARD_LAYOUT, 10, record_tag="Order"))
    parent = parse_xml(AWKWARD.encode())
    rows, depth = compiled.read_records(parent)
    assert (rows, depth) == python.read_records(parent) and depth == 0
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


def test_a_namespaced_record_tag_does_not_match_records_without_that_namespace():
    compiled, python = both_walks(RecordLayout(AWKWARD_LAYOUT, 10, record_tag=f"{{{NS}}}Order"))
    parent = parse_xml(AWKWARD.encode())
    assert compiled.read_records(parent) == python.read_records(parent) == ([], 0)


def test_the_path_to_the_records_reports_how_far_it_exists():
    root = parse_xml(b"<R><A><B><Rec><Id>1</Id></Rec><Rec><Id>2</Id></Rec></B></A><A><B><Rec><Id>3</Id></Rec></B></A></R>")
    for path, expected in [
        (("A", "B"), ([["1"], ["2"]], 2)),  # the first A is taken
        (("A", "Missing"), ([], 1)),
        (("Missing", "B"), ([], 0)),
    ]:
        compiled, python = both_walks(RecordLayout({"Id": 0}, 1, path=path, record_tag="Rec"))
        assert compiled.read_records(root) == python.read_records(root) == expected
    assert compiled.read_one(root) == python.read_one(root) == [None]
    assert compiled.read_one(root.find("A/B/Rec")) == ["1"]


@pytest.mark.parametrize(
    "layout, message",
    [({"Id": 10}, "outside a row of 10"), ({"Id": "0"}, "must be an int"), ({"{unclosed": 0}, "unclosed namespace")],
)
def test_a_broken_layout_is_refused_when_compiled(layout, message):
    with pytest.raises((ValueError, TypeError), match=message):
        RecordLayout(layout, 10)
