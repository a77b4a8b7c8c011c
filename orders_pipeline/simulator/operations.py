"""The six Orders operations: validate parameters, select orders, render the result body."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Callable, Mapping

import numpy as np

from .config import SimulatorConfig
from .errors import invalid_parameter, next_token_corrupted
from .orders import OrderRefs, OrderStore
from .paging import Listing, TokenStore
from .params import member_list, parse_timestamp, required
from .xml_writer import escape, iso_millis, item_xml, order_xml

ORDER_STATUSES = ("PendingAvailability", "Pending", "Unshipped", "PartiallyShipped", "Shipped", "Canceled", "Unfulfillable")
FULFILLMENT_CHANNELS = ("AFN", "MFN")
PAYMENT_METHODS = ("COD", "CVS", "Other")
TWO_MINUTES = timedelta(minutes=2)
MAX_IDS = 50
_DUPLICATE_PERCENT = 8


class OrdersApi:
    """Answers Orders 2013-09-01 actions for one seller; each handler returns the <…Result> body."""

    def __init__(self, config: SimulatorConfig, store: OrderStore, tokens: TokenStore) -> None:
        self._config = config
        self._store = store
        self._tokens = tokens
        self.handlers: dict[str, Callable[[Mapping[str, str], datetime], str]] = {
            "ListOrders": self.list_orders,
            "ListOrdersByNextToken": self.list_orders_by_next_token,
            "ListOrderItems": self.list_order_items,
            "ListOrderItemsByNextToken": self.list_order_items_by_next_token,
            "GetOrder": self.get_order,
            "GetServiceStatus": self.get_service_status,
        }

    def list_orders(self, params: Mapping[str, str], now: datetime) -> str:
        """Orders changed (or created) in a window, oldest change first, paged."""
        marketplaces = self._marketplaces(params)
        basis = self._window_basis(params)
        after = parse_timestamp(f"{basis}After", params[f"{basis}After"])
        latest_allowed = now - TWO_MINUTES
        if params.get(f"{basis}Before"):
            before = parse_timestamp(f"{basis}Before", params[f"{basis}Before"])
            if before > latest_allowed:
                raise invalid_parameter(
                    f"{basis}Before must be no later than two minutes before the time that the request was submitted."
                )
        else:
            before = latest_allowed
        if after >= before:
            raise invalid_parameter(f"The {basis}After date is after the {basis}Before date.")
        page_size = min(self._max_results(params), self._config.list_orders_page_size_cap)
        statuses = self._statuses(params)
        channels = _checked_members(params, "FulfillmentChannel.Channel", FULFILLMENT_CHANNELS)
        payments = _checked_members(params, "PaymentMethod.Method", PAYMENT_METHODS)
        truncate_hours = self._config.faults.truncate_window_hours
        if truncate_hours is not None:
            before = min(before, after + timedelta(hours=truncate_hours))
        refs = self._store.select(
            by_purchase_date=basis == "Created",
            after=after.timestamp(),
            before=before.timestamp(),
            now=now.timestamp(),
            marketplace_ids=marketplaces,
            statuses=statuses or None,
            fulfillment_channels=channels or None,
        )
        if payments and "Other" not in payments:
            refs = refs[0:0]
        if self._config.faults.duplicate_across_pages:
            refs = with_older_duplicates(refs, page_size)
        listing = Listing("ListOrders", refs, page_size, {"bound": (f"{basis}Before", iso_millis(before))})
        return self._orders_page(listing, 0)

    def list_orders_by_next_token(self, params: Mapping[str, str], now: datetime) -> str:
        """The next page of a ListOrders listing."""
        listing, page = self._resolve(params, "ListOrders")
        return self._orders_page(listing, page)

    def list_order_items(self, params: Mapping[str, str], now: datetime) -> str:
        """The lines of one order, as the order currently stands, paged."""
        amazon_order_id = required(params, "AmazonOrderId")
        found = self._store.locate(amazon_order_id, now.timestamp())
        if found is None:
            raise invalid_parameter(f"Invalid AmazonOrderId: {amazon_order_id}")
        items = self._store.record(*found).items
        listing = Listing("ListOrderItems", items, self._config.order_items_page_size, {"order": amazon_order_id})
        return self._items_page(listing, 0)

    def list_order_items_by_next_token(self, params: Mapping[str, str], now: datetime) -> str:
        """The next page of a ListOrderItems listing."""
        listing, page = self._resolve(params, "ListOrderItems")
        return self._items_page(listing, page)

    def get_order(self, params: Mapping[str, str], now: datetime) -> str:
        """Up to 50 orders by AmazonOrderId (unknown ids are left out)."""
        ids = member_list(params, "AmazonOrderId.Id")
        if not ids:
            raise invalid_parameter("Required parameter AmazonOrderId.Id.1 not found or empty.")
        if len(ids) > MAX_IDS:
            raise invalid_parameter(f"AmazonOrderId accepts at most {MAX_IDS} values, got {len(ids)}.")
        rendered = []
        for amazon_order_id in ids:
            found = self._store.locate(amazon_order_id, now.timestamp())
            if found is not None:
                rendered.append(order_xml(self._store.record(*found), self._config.faults.messy_values))
        return _orders_element(rendered)

    def get_service_status(self, params: Mapping[str, str], now: datetime) -> str:
        """Always GREEN."""
        return f"<Status>GREEN</Status><Timestamp>{iso_millis(now)}</Timestamp>"

    def _marketplaces(self, params: Mapping[str, str]) -> list[str]:
        marketplaces = member_list(params, "MarketplaceId.Id")
        if not marketplaces:
            raise invalid_parameter("Required parameter MarketplaceId.Id.1 not found or empty.")
        if len(marketplaces) > MAX_IDS:
            raise invalid_parameter(f"MarketplaceId accepts at most {MAX_IDS} values, got {len(marketplaces)}.")
        for marketplace_id in marketplaces:
            if marketplace_id not in self._config.marketplace_ids:
                raise invalid_parameter(
                    f"Invalid MarketplaceId: {marketplace_id}. The seller is not registered in this marketplace."
                )
        return marketplaces

    @staticmethod
    def _window_basis(params: Mapping[str, str]) -> str:
        created, updated = bool(params.get("CreatedAfter")), bool(params.get("LastUpdatedAfter"))
        if created and updated:
            raise invalid_parameter("Specifying both CreatedAfter and LastUpdatedAfter is not allowed.")
        if not created and not updated:
            raise invalid_parameter("CreatedAfter or LastUpdatedAfter must be specified")
        basis, other = ("Created", "LastUpdated") if created else ("LastUpdated", "Created")
        if params.get(f"{other}Before"):
            raise invalid_parameter(f"{other}Before can only be used together with {other}After.")
        if basis == "LastUpdated":
            for excluded in ("BuyerEmail", "SellerOrderId"):
                if params.get(excluded):
                    raise invalid_parameter(f"{excluded} cannot be specified together with LastUpdatedAfter.")
        return basis

    @staticmethod
    def _max_results(params: Mapping[str, str]) -> int:
        raw = params.get("MaxResultsPerPage", "100")
        if not raw.isdigit() or not 1 <= int(raw) <= 100:
            raise invalid_parameter(f"Invalid MaxResultsPerPage: {raw}. Value must be 1 - 100.")
        return int(raw)

    @staticmethod
    def _statuses(params: Mapping[str, str]) -> list[str]:
        statuses = _checked_members(params, "OrderStatus.Status", ORDER_STATUSES)
        if ("Unshipped" in statuses) != ("PartiallyShipped" in statuses):
            raise invalid_parameter(
                "Unshipped and PartiallyShipped must be used together in this version of the Orders API section."
            )
        return statuses

    def _resolve(self, params: Mapping[str, str], family: str) -> tuple[Listing, int]:
        found = self._tokens.resolve(required(params, "NextToken"), family)
        if found is None:
            raise next_token_corrupted()
        return found

    def _orders_page(self, listing: Listing, page: int) -> str:
        token = self._tokens.token_for(listing, page + 1)
        bound_name, bound_value = listing.context["bound"]
        messy = self._config.faults.messy_values
        rendered = [order_xml(self._store.record(*ref), messy) for ref in listing.page(page)]
        return (
            (f"<NextToken>{escape(token)}</NextToken>" if token else "")
            + f"<{bound_name}>{bound_value}</{bound_name}>"
            + _orders_element(rendered)
        )

    def _items_page(self, listing: Listing, page: int) -> str:
        token = self._tokens.token_for(listing, page + 1)
        items = "".join(item_xml(item) for item in listing.page(page))
        return (
            (f"<NextToken>{escape(token)}</NextToken>" if token else "")
            + f"<AmazonOrderId>{escape(listing.context['order'])}</AmazonOrderId>"
            + (f"<OrderItems>{items}</OrderItems>" if items else "<OrderItems/>")
        )


def _checked_members(params: Mapping[str, str], prefix: str, allowed: tuple[str, ...]) -> list[str]:
    values = member_list(params, prefix)
    for value in values:
        if value not in allowed:
            raise invalid_parameter(f"Invalid {prefix.split('.')[0]}: {value}. Allowed values: {', '.join(allowed)}.")
    return values


def _orders_element(rendered: list[str]) -> str:
    return f"<Orders>{''.join(rendered)}</Orders>" if rendered else "<Orders/>"


def with_older_duplicates(refs: OrderRefs, page_size: int) -> OrderRefs:
    """Insert an older version of a few orders at least one page before their current version."""
    position = np.arange(len(refs))
    mix = (refs.day.astype(np.int64) * 1_000_003 + refs.index.astype(np.int64)) * 2_654_435_761 % 100
    chosen = (refs.version >= 1) & (position >= page_size) & (mix < _DUPLICATE_PERCENT)
    at = position[chosen] - page_size
    return OrderRefs(
        np.insert(refs.day, at, refs.day[chosen]),
        np.insert(refs.index, at, refs.index[chosen]),
        np.insert(refs.version, at, refs.version[chosen] - 1),
    )
