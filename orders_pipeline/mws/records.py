"""Rows of element text from the record elements (Order, OrderItem) of a parsed MWS body.

`RecordLayout.read_records` and `read_one` walk libxml2's tree in C (`_records.c`) when that extension is built
for the running lxml, and in Python otherwise; both give the same rows (tests/test_records.py). The C walk
creates no lxml proxy per element, which is most of what reading a page costs in Python.
"""

from __future__ import annotations

from lxml import etree

try:
    from orders_pipeline.mws import _records
except ImportError as error:  # not compiled (no C compiler at install) or compiled for another lxml
    _records = None
    COMPILED_UNAVAILABLE_BECAUSE: str | None = str(error)
else:
    COMPILED_UNAVAILABLE_BECAUSE = None

Row = list  # raw element text (or list of texts) per column, in schema column order
LIST = "list"  # layout marker: the texts of every child of this element, as one list value


class RecordLayout:
    """Where each known element of a record goes in its row: {tag: position | nested layout | (LIST, position)}.

    `path` (tags from a document root down to the records' parent) and `record_tag` say where `read_records` finds
    the records; `read_one` reads one given element.
    """

    def __init__(
        self, layout: dict, width: int, *, path: tuple[str, ...] = (), record_tag: str = "", compiled: bool = True
    ) -> None:
        self.layout = layout
        self.width = width
        self.path = path
        self.record_tag = record_tag
        use_c = compiled and _records is not None
        self._compiled = _records.compile_layout(layout, width, path, record_tag) if use_c else None

    @property
    def is_compiled(self) -> bool:
        """True when rows are read by the C walk."""
        return self._compiled is not None

    def read_one(self, element: etree._Element) -> Row:
        """The row of one element: the text of every known descendant."""
        if self._compiled is not None:
            return _records.read_record(element, self._compiled)
        return self._read_python(element)

    def read_records(self, root: etree._Element) -> tuple[list[Row], int]:
        """A row per record below `root` at `path`, and how many steps of `path` exist (all of them, or no rows).

        Each step takes the first child with that tag.
        """
        if self._compiled is not None:
            return _records.read_records(root, self._compiled)
        parent = root
        for depth, tag in enumerate(self.path):
            parent = parent.find(tag)
            if parent is None:
                return [], depth
        return [self._read_python(record) for record in parent.iterchildren(self.record_tag)], len(self.path)

    def _read_python(self, record: etree._Element) -> Row:
        row: Row = [None] * self.width
        _fill(record, self.layout, row)
        return row


def _fill(element: etree._Element, layout: dict, row: Row) -> None:
    for child in element:
        target = layout.get(child.tag)
        if target is None:
            continue
        if target.__class__ is int:
            row[target] = child.text
        elif target.__class__ is dict:
            _fill(child, target, row)
        else:
            row[target[1]] = [grandchild.text for grandchild in child]
