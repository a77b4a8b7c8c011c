"""Record XML already checked by lxml → raw column text arrays, in one numpy/Arrow pass over many bodies.

The bytes are cut at every `<` and at the `>` that closes it: even pieces are tags, odd pieces are the text
after them, which is exactly lxml's `element.text` for a start tag when the XML has no comments, CDATA,
processing instructions, character references, attributes or carriage returns. Fragments with any of those
are reported back, and their caller reads them with the Python walk instead: never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from orders_pipeline.mws.schema import Column, Kind

_LT, _GT, _SLASH, _AMPERSAND = ord("<"), ord(">"), ord("/"), ord("&")
_PLAIN_TAG = r"^</?[A-Za-z_][A-Za-z0-9_.:\-]*/?>$"  # a name and nothing else: no attributes, no whitespace
_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&apos;", "'"), ("&amp;", "&"))  # &amp; last
_UNREADABLE = (b"\r", b"&#")  # end-of-line normalisation and character references: left to lxml


@dataclass(frozen=True)
class _Plan:
    """Lookup tables from tag names to columns, per depth below the records' parent element."""

    vocabulary: pa.Array  # "<Name>", "</Name>", "<Name/>" for every known name, in that order
    name_of_code: np.ndarray  # [vocabulary index] → name id; the last entry (index -1) is the unknown name
    record: int  # name id of the record element
    leaf2: np.ndarray  # [name] → column of a leaf child of the record, or -1
    leaf3: np.ndarray  # [child, name] → column of a leaf grandchild
    leaf4: np.ndarray  # [child, grandchild, name] → column of a leaf great-grandchild
    list_parent: np.ndarray  # [name] → column of a list whose members are this child's children


@lru_cache(maxsize=8)
def _plan(columns: tuple[Column, ...], record_tag: str) -> _Plan:
    names = list(dict.fromkeys([record_tag, *(tag for column in columns for tag in column.path)]))
    ids = {name: index for index, name in enumerate(names)}
    size = len(names) + 1
    leaf2 = np.full(size, -1, np.int32)
    leaf3 = np.full((size, size), -1, np.int32)
    leaf4 = np.full((size, size, size), -1, np.int32)
    list_parent = np.full(size, -1, np.int32)
    for index, column in enumerate(columns):
        path = tuple(ids[tag] for tag in column.path)
        if column.kind is Kind.STRING_LIST:
            list_parent[path[0]] = index
        elif len(path) == 1:
            leaf2[path] = index
        elif len(path) == 2:
            leaf3[path] = index
        elif len(path) == 3:
            leaf4[path] = index
        elif path:
            raise ValueError(f"column {column.name} is nested deeper than the vectorised reader reads")
    vocabulary = pa.array([tag for name in names for tag in (f"<{name}>", f"</{name}>", f"<{name}/>")], pa.string())
    name_of_code = np.append(np.repeat(np.arange(len(names), dtype=np.int32), 3), len(names))
    return _Plan(vocabulary, name_of_code, ids[record_tag], leaf2, leaf3, leaf4, list_parent)


@dataclass(frozen=True)
class Extracted:
    """Raw text of every path column over the records of the readable fragments, in fragment order."""

    arrays: list[pa.Array | None]  # per column; None for context columns (no element path)
    unreadable: frozenset[int]  # fragments left out, to be read by the Python walk


def extract(fragments: Sequence[bytes], record_counts: Sequence[int], columns: tuple[Column, ...], record_tag: str) -> Extracted:
    """Read every record of `fragments` (the content of their records' parent element) column by column."""
    unreadable = frozenset(i for i, xml in enumerate(fragments) if any(bad in xml for bad in _UNREADABLE))
    while True:
        readable = [i for i in range(len(fragments)) if i not in unreadable]
        result = _read([fragments[i] for i in readable], [record_counts[i] for i in readable], columns, record_tag)
        if isinstance(result, list):
            return Extracted(result, unreadable)
        unreadable = unreadable | {readable[i] for i in result}


def _read(fragments: list[bytes], record_counts: list[int], columns: tuple[Column, ...], record_tag: str):
    """Column arrays, or the indices of the fragments the vectorised reading cannot vouch for."""
    plan = _plan(columns, record_tag)
    joined = b"".join(fragments)
    starts = np.cumsum([0, *map(len, fragments)])[:-1]
    data = np.frombuffer(joined, np.uint8)
    lt = np.flatnonzero(data == _LT)
    gt = _tag_ends(lt, np.flatnonzero(data == _GT))
    if gt is None:
        return set(range(len(fragments)))
    bounds = np.empty(2 * len(lt) + 1, np.int32)  # a batch is a few MB; bodies are capped at 64 MB
    bounds[0:-1:2], bounds[1:-1:2], bounds[-1:] = lt, gt + 1, len(joined)
    pieces = pa.StringArray.from_buffers(2 * len(lt), pa.py_buffer(bounds), pa.py_buffer(joined))
    codes = pc.fill_null(pc.index_in(pieces, value_set=plan.vocabulary), -1).to_numpy()[0::2]

    unknown = np.flatnonzero(codes < 0)
    if len(unknown):
        plain = pc.match_substring_regex(pieces.take(pa.array(2 * unknown)), _PLAIN_TAG).to_numpy(zero_copy_only=False)
        if not plain.all():
            return set((np.searchsorted(starts, lt[unknown[~plain]], side="right") - 1).tolist())

    is_close = data[lt + 1] == _SLASH
    is_empty = data[gt - 1] == _SLASH
    depth = np.cumsum(np.where(is_close, -1, np.where(is_empty, 0, 1)).astype(np.int32)) + is_empty
    elements = np.flatnonzero(~is_close)  # from here on, start and empty tags only
    depth, is_empty, name = depth[elements], is_empty[elements], plan.name_of_code[codes[elements]]
    fragment_of = np.searchsorted(starts, lt[elements], side="right") - 1
    position = np.arange(len(elements))
    at_1 = depth == 1
    is_record = at_1 & (name == plan.record)
    found = np.bincount(fragment_of[is_record], minlength=len(fragments))
    if (found != record_counts).any():
        return set(np.flatnonzero(found != record_counts).tolist())
    records = int(is_record.sum())
    record = np.cumsum(is_record) - 1
    record_fragment = fragment_of[is_record]
    in_record = (depth >= 2) & is_record[np.maximum.accumulate(np.where(at_1, position, 0))]
    child = name[np.maximum.accumulate(np.where(depth == 2, position, 0))]
    grandchild = name[np.maximum.accumulate(np.where(depth == 3, position, 0))]
    column = np.where(depth == 2, plan.leaf2[name], plan.leaf3[child, name])
    deep = np.flatnonzero(depth == 4)
    column[deep] = plan.leaf4[child[deep], grandchild[deep], name[deep]]
    column[depth > 4] = -1
    leaf = np.flatnonzero(in_record & (column >= 0))
    list_of_child = plan.list_parent[name]
    lists = np.flatnonzero(in_record & (depth == 2) & (list_of_child >= 0))
    members = np.flatnonzero(in_record & (depth == 3) & (plan.list_parent[child] >= 0))

    slots = np.concatenate([column[leaf] * records + record[leaf], list_of_child[lists] * records + record[lists]])
    given = np.bincount(slots, minlength=1)
    if given.max() > 1:  # an element given twice in one record: the walk decides which one counts
        return set(record_fragment[np.flatnonzero(given > 1) % records].tolist())

    text_of = np.where(is_empty, -1, 2 * elements + 1)  # the piece after a start tag; no text for <Name/>
    values = _scattered(pieces, slots[: len(leaf)], text_of[leaf], len(columns) * records)
    member_values = _scattered(pieces, np.arange(len(members)), text_of[members], len(members))
    arrays: list[pa.Array | None] = []
    for index, col in enumerate(columns):
        if not col.path:
            arrays.append(None)
        elif col.kind is Kind.STRING_LIST:
            in_list = plan.list_parent[child[members]] == index
            mine = record[lists[list_of_child[lists] == index]]
            arrays.append(_list_array(records, mine, record[members[in_list]], member_values.filter(pa.array(in_list))))
        else:
            arrays.append(values.slice(index * records, records))
    return arrays


def _tag_ends(lt: np.ndarray, gt: np.ndarray) -> np.ndarray | None:
    """The `>` closing each `<`: usually the two simply alternate; text may also hold a bare `>`."""
    if len(gt) == len(lt) and (gt > lt).all() and (gt[:-1] < lt[1:]).all():
        return gt
    if not len(gt):
        return None if len(lt) else gt
    ends = gt[np.minimum(np.searchsorted(gt, lt), len(gt) - 1)]
    return None if (ends < lt).any() else ends


def _scattered(pieces: pa.StringArray, slots: np.ndarray, sources: np.ndarray, length: int) -> pa.Array:
    """A string array of `length` holding piece `sources[i]` at `slots[i]` (null where a source is -1) and null elsewhere."""
    where = np.full(length, -1, np.int64)
    where[slots] = sources
    present = where >= 0
    dense = _decoded(pieces.take(pa.array(where[present])))
    dense_offsets = np.frombuffer(dense.buffers()[1], np.int32)[dense.offset : dense.offset + len(dense) + 1]
    lengths = np.zeros(length, np.int32)
    lengths[present] = np.diff(dense_offsets)
    offsets = np.empty(length + 1, np.int32)
    offsets[0] = dense_offsets[0]
    np.cumsum(lengths, out=offsets[1:])
    offsets[1:] += dense_offsets[0]
    validity = pa.py_buffer(np.packbits(present, bitorder="little"))
    return pa.StringArray.from_buffers(length, pa.py_buffer(offsets), dense.buffers()[2], validity, length - len(dense))


def _list_array(records: int, with_list: np.ndarray, member_records: np.ndarray, members: pa.Array) -> pa.Array:
    """One list column: the members of each record's list element, in order; null where it has none."""
    counts = np.bincount(member_records, minlength=records)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    present = np.zeros(records, bool)
    present[with_list] = True
    return pa.ListArray.from_arrays(pa.array(offsets), members, mask=pa.array(~present))


def _decoded(texts: pa.StringArray) -> pa.StringArray:
    """The five predefined entities decoded, as the XML parser does (character references never get here)."""
    offsets = np.frombuffer(texts.buffers()[1], np.int32)[texts.offset : texts.offset + len(texts) + 1]
    data = np.frombuffer(texts.buffers()[2], np.uint8)[offsets[0] : offsets[-1]] if len(texts) else ()
    if not len(data) or not (data == _AMPERSAND).any():
        return texts
    with_entities = pc.fill_null(pc.match_substring(texts, "&"), False).to_numpy(zero_copy_only=False)
    decoded = texts.filter(pa.array(with_entities))
    for entity, character in _ENTITIES:
        decoded = pc.replace_substring(decoded, entity, character)
    index = np.arange(len(texts))
    index[with_entities] = len(texts) + np.arange(len(decoded))
    return pa.concat_arrays([texts, decoded]).take(pa.array(index))
