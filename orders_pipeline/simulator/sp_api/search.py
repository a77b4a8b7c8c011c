"""searchOrders and getOrder: validate the query, select order versions, page them behind nextTokens."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Mapping

from ..config import SimulatorConfig
from ..errors import MwsError
from ..operations import with_older_duplicates
from ..orders import OrderRefs, OrderStore
from ..paging import new_token
from ..params import parse_timestamp
from ..xml_writer import iso_millis
from .errors import invalid_input, not_found
from .orders_json import FULFILLED_BY, FULFILLMENT_STATUS, INCLUDED_DATA, order_json

TWO_MINUTES = timedelta(minutes=2)
MAX_MARKETPLACES = 50
_MAX_CURSORS = 100_000
_PAGE_FREE = ("paginationToken", "maxResultsPerPage", "includedData")  # may change from page to page
_ORDER_ID = re.compile(r"^\d{3}-\d{7}-\d{7}$")
_STATUS_OF = {value: key for key, value in FULFILLMENT_STATUS.items()}
_CHANNEL_OF = {value: key for key, value in FULFILLED_BY.items()}


@dataclass(frozen=True)
class _Search:
    """A first page's query and everything its later pages repeat."""

    query: tuple[tuple[str, str], ...]
    refs: OrderRefs
    bound: tuple[str, str]


class OrdersSearch:
    """Answers searchOrders and getOrder for one seller over the shared order store."""

    def __init__(self, config: SimulatorConfig, store: OrderStore) -> None:
        self._config = config
        self._store = store
        self._cursors: OrderedDict[str, tuple[_Search, int]] = OrderedDict()
        self._lock = threading.Lock()

    def search_orders(self, params: Mapping[str, str], now: datetime) -> dict:
        """One page of orders, oldest change first, with the echoed window bound."""
        size = _page_size(params)
        included = included_data(params)
        token = params.get("paginationToken")
        if token is not None:
            search, offset = self._resolve(token, params)
        else:
            search, offset = self._new_search(params, now, size), 0
        refs = search.refs[offset : offset + size]
        body: dict = {"orders": [order_json(self._store.record(*ref), included, self._config.faults.messy_values)
                                 for ref in refs]}
        if offset + size < len(search.refs):
            body["pagination"] = {"nextToken": self._save(search, offset + size)}
        name, value = search.bound
        body[name] = value
        return body

    def get_order(self, order_id: str, params: Mapping[str, str], now: datetime) -> dict:
        """The current version of one order."""
        included = included_data(params)
        if not _ORDER_ID.match(order_id):
            raise invalid_input(f"Invalid orderId: {order_id[:40]!r}. Expected the 3-7-7 digit format.")
        found = self._store.locate(order_id, now.timestamp())
        if found is None:
            raise not_found(f"Order {order_id} was not found.")
        return {"order": order_json(self._store.record(*found), included, self._config.faults.messy_values)}

    def _new_search(self, params: Mapping[str, str], now: datetime, size: int) -> _Search:
        basis = _window_basis(params)
        after = _timestamp(params, f"{basis}After")
        latest_allowed = now - TWO_MINUTES
        if params.get(f"{basis}Before"):
            before = _timestamp(params, f"{basis}Before")
            if before > latest_allowed:
                raise invalid_input(f"{basis}Before must be at least two minutes before the time of the request.")
            if before < after:
                raise invalid_input(f"{basis}Before must be equal to or after {basis}After.")
        else:
            before = latest_allowed
        truncate_hours = self._config.faults.truncate_window_hours
        if truncate_hours is not None:
            before = min(before, after + timedelta(hours=truncate_hours))
        before = before.replace(microsecond=before.microsecond // 1000 * 1000)  # the echo has millisecond precision
        statuses = _members(params, "fulfillmentStatuses", tuple(_STATUS_OF))
        fulfilled_by = _members(params, "fulfilledBy", tuple(_CHANNEL_OF))
        refs = self._store.select(
            by_purchase_date=basis == "created",
            after=after.timestamp(),
            before=before.timestamp(),
            now=now.timestamp(),
            marketplace_ids=self._marketplaces(params),
            statuses=[_STATUS_OF[s] for s in statuses] or None,
            fulfillment_channels=[_CHANNEL_OF[c] for c in fulfilled_by] or None,
        )
        if self._config.faults.duplicate_across_pages:
            refs = with_older_duplicates(refs, size)
        return _Search(_query_of(params), refs, (f"{basis}Before", iso_millis(before)))

    def _marketplaces(self, params: Mapping[str, str]) -> list[str]:
        marketplaces = [m for m in params.get("marketplaceIds", "").split(",") if m]
        if not marketplaces:
            raise invalid_input("marketplaceIds is required.")
        if len(marketplaces) > MAX_MARKETPLACES:
            raise invalid_input(f"marketplaceIds accepts at most {MAX_MARKETPLACES} values, got {len(marketplaces)}.")
        for marketplace_id in marketplaces:
            if marketplace_id not in self._config.marketplace_ids:
                raise invalid_input(f"Invalid marketplaceId {marketplace_id[:40]!r}: the seller is not registered there.")
        return marketplaces

    def _save(self, search: _Search, offset: int) -> str:
        token = new_token()
        with self._lock:
            self._cursors[token] = (search, offset)
            while len(self._cursors) > _MAX_CURSORS:
                self._cursors.popitem(last=False)
        return token

    def _resolve(self, token: str, params: Mapping[str, str]) -> tuple[_Search, int]:
        with self._lock:
            found = self._cursors.get(token)
        if found is None:
            raise invalid_input("Invalid paginationToken: it is unknown or has expired.")
        if found[0].query != _query_of(params):
            raise invalid_input(
                "paginationToken must come with every other parameter of the first request, unchanged "
                "(only maxResultsPerPage and includedData may differ)."
            )
        return found


def included_data(params: Mapping[str, str]) -> frozenset[str]:
    """The includedData values asked for (400 for an unknown one)."""
    return frozenset(_members(params, "includedData", INCLUDED_DATA))


def _members(params: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> list[str]:
    values = [v for v in params.get(name, "").split(",") if v]
    for value in values:
        if value not in allowed:
            raise invalid_input(f"Invalid {name} value {value[:40]!r}. Allowed values: {', '.join(allowed)}.")
    return values


def _page_size(params: Mapping[str, str]) -> int:
    raw = params.get("maxResultsPerPage", "100")
    if not raw.isdigit() or not 1 <= int(raw) <= 100:
        raise invalid_input(f"Invalid maxResultsPerPage {raw[:20]!r}: the value must be between 1 and 100.")
    return int(raw)


def _window_basis(params: Mapping[str, str]) -> str:
    created = bool(params.get("createdAfter") or params.get("createdBefore"))
    updated = bool(params.get("lastUpdatedAfter") or params.get("lastUpdatedBefore"))
    if created and updated:
        raise invalid_input("Provide either createdAfter/createdBefore or lastUpdatedAfter/lastUpdatedBefore, not both.")
    basis = "created" if created else "lastUpdated"
    if not params.get(f"{basis}After"):
        raise invalid_input("Exactly one of createdAfter and lastUpdatedAfter is required.")
    return basis


def _timestamp(params: Mapping[str, str], name: str) -> datetime:
    try:
        return parse_timestamp(name, params[name])
    except MwsError:
        raise invalid_input(f"Invalid {name} {params[name][:40]!r}: expected an ISO 8601 date-time.") from None


def _query_of(params: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in params.items() if k not in _PAGE_FREE))
