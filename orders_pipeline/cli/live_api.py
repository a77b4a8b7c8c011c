"""The command's live calls to the chosen API ($ORDERS_SOURCE): a cheap health check for `status`, GetOrder for `order`."""

from __future__ import annotations

import os
import sys

from orders_pipeline.cli.lookup import HISTORY_COLUMNS, ORDER_COLUMNS
from orders_pipeline.cli.output import EXIT_FAILED, EXIT_NOT_FOUND, EXIT_OK, plain
from orders_pipeline.defs.resources import MwsResource, chosen_source
from orders_pipeline.defs.sp_api_resource import SpApiResource
from orders_pipeline.sources.accounts import Account
from orders_pipeline.sources.mws.errors import MwsError
from orders_pipeline.sources.sp_api.errors import SpApiApiError, SpApiError

PROBE_ORDER_ID = "000-0000000-0000000"  # a well-formed id no order has: getOrder answers NotFound when access works


def uses_sp_api(account: Account | None = None) -> bool:
    """Whether the account's source, or without one $ORDERS_SOURCE, is the Selling Partner API (default: MWS)."""
    return (account.source if account else chosen_source()) == "sp-api"


def endpoint_variable() -> str:
    """The variable naming the chosen API's endpoint (unset: the embedded simulator)."""
    return "SP_API_ENDPOINT" if uses_sp_api() else "MWS_ENDPOINT"


def print_service_status(account: Account | None = None) -> int:
    """Ask the configured API (the account's) whether it answers these credentials; without an endpoint, say runs use
    the simulator."""
    if account is not None and not account.endpoint:
        print(f"\nAPI ({account.name}): no endpoint in the accounts file; runs use the embedded simulator.")
        return EXIT_OK
    variable = endpoint_variable()
    if account is None and not os.environ.get(variable):
        print(f"\nAPI: {variable} is not set; runs use the embedded simulator.")
        return EXIT_OK
    return _sp_api_status(account) if uses_sp_api(account) else _mws_status(account)


def print_live_order(amazon_order_id: str, account: Account | None = None) -> int:
    """The order as the API (of `account`) knows it now (MWS GetOrder or SP-API getOrder)."""
    try:
        if uses_sp_api(account):
            with SpApiResource().open_client(account=account) as (client, source):
                rows = client.get_order(amazon_order_id).orders.to_pylist()
        else:
            with MwsResource().open_client(account=account) as (client, source):
                rows = client.get_orders([amazon_order_id]).table.to_pylist()
    except SpApiApiError as error:
        if error.code == "NotFound":
            print(f"  the API does not know order {amazon_order_id}")
            return EXIT_NOT_FOUND
        print(f"getOrder failed: {error}", file=sys.stderr)
        return EXIT_FAILED
    except (MwsError, SpApiError) as error:
        print(f"GetOrder failed: {error}", file=sys.stderr)
        return EXIT_FAILED
    embedded = ", the embedded simulator" if source.is_embedded_simulator else ""
    operation = "getOrder" if uses_sp_api(account) else "GetOrder"
    print(f"\nLive ({operation} from {source.endpoint}{embedded}):")
    if not rows:
        print(f"  the API does not know order {amazon_order_id}")
        return EXIT_NOT_FOUND
    print("\n".join(f"  {name:<26} {plain(rows[0][name])}" for name in (*HISTORY_COLUMNS[1:], *ORDER_COLUMNS)))
    return EXIT_OK


def _mws_status(account: Account | None) -> int:
    try:
        with MwsResource().open_client(account=account) as (client, source):
            print(f"\nAPI: {source.endpoint} GetServiceStatus = {client.get_service_status()}")
    except MwsError as error:
        print(f"\nAPI: GetServiceStatus failed: {error}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _sp_api_status(account: Account | None) -> int:
    """One getOrder of an id no order has: a NotFound proves the token exchange and the app's access to orders."""
    try:
        with SpApiResource().open_client(account=account) as (client, source):
            client.get_order(PROBE_ORDER_ID)
    except SpApiApiError as error:
        if error.code != "NotFound":
            print(f"\nAPI: SP-API credentials check failed: {error}", file=sys.stderr)
            return EXIT_FAILED
    except SpApiError as error:
        print(f"\nAPI: SP-API credentials check failed: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(f"\nAPI: {source.endpoint} answers these SP-API credentials (token issued, getOrder authorized)")
    return EXIT_OK
