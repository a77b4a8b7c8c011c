"""The reference reading of one record element: the text of every known element, walked in Python."""

from __future__ import annotations

from functools import lru_cache

from orders_pipeline.mws.schema import Column, Kind

Row = list  # raw element text (or list of texts) per column, in schema column order

_LIST = "list"


def read_record(record, columns: tuple[Column, ...], ns: str = "") -> Row:
    """Copy the text of every known element of one record into a row; unknown elements are ignored."""
    row: Row = [None] * len(columns)
    _fill(record, layout(columns, ns), row)
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


@lru_cache(maxsize=16)
def layout(columns: tuple[Column, ...], ns: str) -> dict:
    """Map namespaced tags to column positions: ints for leaves, nested dicts for groups, tuples for lists."""
    tree: dict = {}
    for index, column in enumerate(columns):
        if not column.path:
            continue
        if column.kind is Kind.STRING_LIST:
            parent, _member = column.path
            tree[f"{ns}{parent}"] = (_LIST, index)
            continue
        node = tree
        for tag in column.path[:-1]:
            node = node.setdefault(f"{ns}{tag}", {})
        node[f"{ns}{column.path[-1]}"] = index
    return tree
