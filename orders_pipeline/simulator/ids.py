"""Amazon-looking identifiers that encode (day, order index) reversibly, so no lookup table is needed."""

from __future__ import annotations

import re

MAX_ORDERS_PER_DAY = 1_000_000
MAX_ITEMS_PER_ORDER = 4

_ORDER_MOD = 10**17
_ORDER_MUL = 58_213_374_998_611_207
_ORDER_INV = pow(_ORDER_MUL, -1, _ORDER_MOD)
_ITEM_MOD = 10**14
_ITEM_MUL = 73_244_475_291_863
_ORDER_ID_RE = re.compile(r"^(\d{3})-(\d{7})-(\d{7})$")


def _order_offset(seed: int) -> int:
    return (31_415_926_535_897_932 + seed * 1_000_003) % _ORDER_MOD


def order_id(seed: int, day_ordinal: int, index: int) -> str:
    """The AmazonOrderId (3-7-7 digits) of order `index` purchased on `day_ordinal`."""
    n = ((day_ordinal * MAX_ORDERS_PER_DAY + index) * _ORDER_MUL + _order_offset(seed)) % _ORDER_MOD
    digits = f"{n:017d}"
    return f"{digits[:3]}-{digits[3:10]}-{digits[10:]}"


def parse_order_id(seed: int, amazon_order_id: str) -> tuple[int, int] | None:
    """(day_ordinal, index) encoded in an AmazonOrderId, or None if it is not in 3-7-7 format."""
    match = _ORDER_ID_RE.match(amazon_order_id)
    if match is None:
        return None
    n = int("".join(match.groups()))
    x = ((n - _order_offset(seed)) * _ORDER_INV) % _ORDER_MOD
    return divmod(x, MAX_ORDERS_PER_DAY)


def order_item_id(seed: int, day_ordinal: int, index: int, line: int) -> str:
    """The 14-digit OrderItemId of line `line` (0-based) of an order."""
    x = (day_ordinal * MAX_ORDERS_PER_DAY + index) * MAX_ITEMS_PER_ORDER + line
    return f"{(x * _ITEM_MUL + seed * 7_919) % _ITEM_MOD:014d}"
