"""The element text of the record elements (Order, OrderItem) of parsed MWS bodies, as Arrow string columns.

`RecordLayout.read_records` walks a page's records once, keeping the text of every known element in a row per
record; `column_arrays` lays the texts of many pages out as Arrow string columns, column after column.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import pyarrow as pa
from lxml import etree

Row = list  # raw element text (or list of texts) per column, in schema column order
LIST = "list"  # layout marker: the texts of every child of this element, as one list value
LIST_TYPE = pa.list_(pa.string())


class Texts(Protocol):
    """The element texts of one page's records: str or None per column, a list of them for a list column."""

    def __len__(self) -> int: ...

    def column(self, index: int) -> list:
        """Every record's value at one row position."""

    def has_blank(self, index: int) -> bool:
        """Whether some record's text at one row position (not a list's) is None or empty once stripped."""

    def fill(self, index: int, text: str | None) -> None:
        """Give every record the same text at one row position (not a list's)."""

    def set_column(self, index: int, texts: Sequence[str | None]) -> None:
        """Give the records these texts, one each, at one row position (not a list's)."""


class PythonTexts:
    """The texts the Python walk read: one row per record."""

    def __init__(self, rows: list[Row], width: int, lists: frozenset[int]) -> None:
        self.rows = rows
        self.width = width
        self.lists = lists

    def __len__(self) -> int:
        return len(self.rows)

    def column(self, index: int) -> list:
        """Every record's value at one row position."""
        return [row[index] for row in self.rows]

    def has_blank(self, index: int) -> bool:
        """Whether some record's text at one row position (not a list's) is None or empty once stripped."""
        self._check_text_column(index)
        return any(not (row[index] or "").strip() for row in self.rows)

    def fill(self, index: int, text: str | None) -> None:
        """Give every record the same text at one row position (not a list's)."""
        self.set_column(index, [text] * len(self.rows))

    def set_column(self, index: int, texts: Sequence[str | None]) -> None:
        """Give the records these texts, one each, at one row position (not a list's)."""
        self._check_text_column(index)
        if len(texts) != len(self.rows):
            raise ValueError(f"{len(texts)} texts for {len(self.rows)} records")
        for row, text in zip(self.rows, texts):
            row[index] = text

    def _check_text_column(self, index: int) -> None:
        if index in self.lists:
            raise TypeError(f"column {index} holds lists, not texts")


class RecordLayout:
    """Where each known element of a record goes in its row: {tag: position | nested layout | (LIST, position)}.

    `path` (tags from a document root down to the records' parent) and `record_tag` say where `read_records` finds
    the records; `read_one` reads one given element.
    """

    def __init__(self, layout: dict, width: int, *, path: tuple[str, ...] = (), record_tag: str = "") -> None:
        self.layout = layout
        self.width = width
        self.path = path
        self.record_tag = record_tag
        self.lists = frozenset(_list_positions(layout))

    def read_one(self, element: etree._Element) -> Row:
        """The row of one element: the text of every known descendant."""
        return self._read_row(element)

    def read_records(self, root: etree._Element) -> tuple[Texts, int]:
        """The texts of every record below `root` at `path`, and how many steps of `path` exist (all, or no records).

        Each step takes the first child with that tag.
        """
        parent = root
        for depth, tag in enumerate(self.path):
            parent = parent.find(tag)
            if parent is None:
                return PythonTexts([], self.width, self.lists), depth
        rows = [self._read_row(record) for record in parent.iterchildren(self.record_tag)]
        return PythonTexts(rows, self.width, self.lists), len(self.path)

    def _read_row(self, record: etree._Element) -> Row:
        row: Row = [None] * self.width
        _fill(record, self.layout, row)
        return row


def column_arrays(pages: Sequence[PythonTexts], order: Sequence[int]) -> tuple[pa.Array, dict[int, pa.Array]]:
    """The texts of one or more pages read with one layout, as Arrow arrays: one string array holding the text
    columns at the positions in `order`, one after another, and a list<string> array per list column."""
    lists, width = pages[0].lists, pages[0].width
    for index in order:
        if not 0 <= index < width or index in lists:
            raise ValueError(f"{index} is not a text column of a row of {width}")
    texts = pa.array([row[index] for index in order for page in pages for row in page.rows], pa.string())
    return texts, {index: pa.array([row[index] for page in pages for row in page.rows], LIST_TYPE) for index in sorted(lists)}


def _list_positions(layout: dict) -> list[int]:
    """The row positions of a layout's list values, at any depth."""
    positions = []
    for target in layout.values():
        if target.__class__ is dict:
            positions += _list_positions(target)
        elif target.__class__ is tuple:
            positions.append(target[1])
    return positions


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
