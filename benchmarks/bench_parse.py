"""Parse speed: ListOrders pages and ListOrderItems documents into Arrow, against the raw lxml parse and a naive parser.

Captures real response bodies from the simulator over HTTP once (a day of orders and every order's items),
then, in this one process and on the same bytes, times:

* raw   — `lxml.etree.fromstring` of every body: the floor any XML-based parser pays;
* ours  — the pipeline's path: `parse_orders_page` / `parse_order_items_page` per body, rows batched into
          typed Arrow tables by a `TableBuilder` every `FLUSH_ROWS` rows, as `MwsOrdersSource` does;
* naive — `xmltodict.parse` + `pandas.json_normalize` per body, what a user would write first.

    python benchmarks/bench_parse.py            # a day of 5,000 orders, best of 5
    python benchmarks/bench_parse.py --quick    # 1,000 orders, best of 3
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import datetime, timezone

import pandas as pd
import xmltodict
from lxml import etree

from _harness import DAY, RecordingSession, client_for, machine, say
from orders_pipeline.sources.ingest import day_window
from orders_pipeline.sources.mws.source import FLUSH_ROWS
from orders_pipeline.sources.mws.parse import (
    ITEM_ORDER_LAST_UPDATE_INDEX,
    ORDER_ID_INDEX,
    TableBuilder,
    order_items_builder,
    orders_builder,
    parse_order_items_page,
    parse_orders_page,
)
from orders_pipeline.simulator import MwsSimulator, SimulatorConfig

ORDER_ACTIONS = ("ListOrders", "ListOrdersByNextToken")
ITEM_ACTIONS = ("ListOrderItems", "ListOrderItemsByNextToken")
SOME_LAST_UPDATE = "2024-03-03T12:00:00Z"


def capture(orders_per_day: int, messy: bool) -> tuple[list[bytes], list[bytes]]:
    """Bodies of every orders page and every items document of one simulated day, fetched over HTTP."""
    config = SimulatorConfig(orders_per_day=orders_per_day, throttling=False)
    config.faults.messy_values = messy
    session = RecordingSession()
    window = day_window(DAY, datetime.now(timezone.utc))
    with MwsSimulator(config) as simulator, client_for(simulator, session=session) as client:
        for page in client.list_orders(window.start, window.requested_before):
            for order_id in page.records.column(ORDER_ID_INDEX):
                for _ in client.list_order_items(order_id):
                    pass
    bodies = session.bodies
    orders = [body for action in ORDER_ACTIONS for body in bodies.get(action, [])]
    items = [body for action in ITEM_ACTIONS for body in bodies.get(action, [])]
    return orders, items


def raw_parse(bodies: list[bytes]) -> int:
    """The floor: lxml builds each tree and nothing else."""
    for body in bodies:
        etree.fromstring(body)
    return 0


def ours_orders(bodies: list[bytes]) -> int:
    """The pipeline: rows from every page, batched into typed tables."""
    builder = orders_builder()
    rows = 0
    for body in bodies:
        builder.extend(parse_orders_page(body).records)
        rows += _flush_if_full(builder)
    return rows + builder.build().num_rows


def ours_items(bodies: list[bytes]) -> int:
    """The pipeline: rows from every items document, batched into typed tables."""
    builder = order_items_builder()
    rows = 0
    for body in bodies:
        page = parse_order_items_page(body)
        page.records.fill(ITEM_ORDER_LAST_UPDATE_INDEX, SOME_LAST_UPDATE)
        builder.extend(page.records)
        rows += _flush_if_full(builder)
    return rows + builder.build().num_rows


def _flush_if_full(builder: TableBuilder) -> int:
    return builder.build().num_rows if len(builder) >= FLUSH_ROWS else 0


def naive_orders(bodies: list[bytes]) -> int:
    """xmltodict + json_normalize per page."""
    return _naive(bodies, "Orders", "Order")


def naive_items(bodies: list[bytes]) -> int:
    """xmltodict + json_normalize per items document."""
    return _naive(bodies, "OrderItems", "OrderItem")


def _naive(bodies: list[bytes], list_tag: str, record_tag: str) -> int:
    """What a user would write first: each body to nested dicts, the records flattened by pandas."""
    rows = 0
    for body in bodies:
        document = xmltodict.parse(body)
        result = next(iter(document.values()))
        result = next(value for key, value in result.items() if key.endswith("Result"))
        records = (result.get(list_tag) or {}).get(record_tag) or []
        rows += len(pd.json_normalize(records if isinstance(records, list) else [records], sep="_"))
    return rows


def best_of(repeats: int, works: list[Callable[[list[bytes]], int]], bodies: list[bytes]) -> list[float]:
    """Each work's fastest of `repeats` interleaved rounds, in CPU seconds of this process (not time preempted)."""
    best = [float("inf")] * len(works)
    for _ in range(repeats):
        for index, work in enumerate(works):
            started = time.process_time()
            work(bodies)
            best[index] = min(best[index], time.process_time() - started)
    return best


def report(label: str, unit: str, records: int, bodies: list[bytes], repeats: int, ours, naive) -> float:
    """Time the three parsers on `bodies`, print their rates and return ours as a fraction of the raw speed."""
    raw_s, ours_s = best_of(repeats, [raw_parse, ours], bodies)
    (naive_s,) = best_of(max(1, repeats // 2), [naive], bodies)
    megabytes = sum(map(len, bodies)) / 1e6
    say(f"{label}: {len(bodies):,} bodies, {records:,} {unit}, {megabytes:,.1f} MB")
    for name, seconds in (("raw lxml parse", raw_s), ("ours → Arrow", ours_s), ("xmltodict+pandas", naive_s)):
        say(f"  {name:<17} {seconds * 1e3:9.1f} ms  {records / seconds:12,.0f} {unit}/s  {raw_s / seconds:7.1%} of raw")
    say(f"  naive is {naive_s / raw_s:,.1f}x slower than raw, {naive_s / ours_s:,.1f}x slower than ours")
    return raw_s / ours_s


def main() -> None:
    """Capture bodies, time the parsers and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 orders, best of 3")
    parser.add_argument("--orders", type=int, help="orders per simulated day (default 5,000)")
    parser.add_argument("--messy", action="store_true", help="let the simulator inject messy values")
    args = parser.parse_args()
    orders_per_day = args.orders or (1_000 if args.quick else 5_000)
    repeats = 3 if args.quick else 5
    say(f"machine: {machine()}")
    order_bodies, item_bodies = capture(orders_per_day, args.messy)
    orders = ours_orders(order_bodies)
    items = ours_items(item_bodies)
    order_ratio = report("ListOrders pages", "orders", orders, order_bodies, repeats, ours_orders, naive_orders)
    item_ratio = report("ListOrderItems documents", "items", items, item_bodies, repeats, ours_items, naive_items)
    say(f"target ≥ 50% of raw: orders {order_ratio:.0%}, items {item_ratio:.0%}")


if __name__ == "__main__":
    main()
