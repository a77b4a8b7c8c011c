"""Check the Dagster UI in a real browser: lineage, a raw partition's metadata, the charts and the alerts.

Starts `dagster dev` on 127.0.0.1 with a throwaway DAGSTER_HOME and ORDERS_DATA_DIR, backfills a few days from the
embedded simulator with `orders-pipeline backfill` (which also builds the marts and charts), waits for the alert
sensor's run, then opens pages in headless Chromium through Playwright, asserts on what they render and saves
screenshots to docs/screenshots/. Needs `pip install -e ".[browser]"` and a Chromium (`apt-get install chromium`).

    python scripts/browser_check.py [--days 21] [--port 3333] [--chromium /usr/bin/chromium]

Exit code 0 when every check passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCREENSHOTS = REPO / "docs" / "screenshots"
BIN = Path(sys.executable).parent
VIEWPORT = {"width": 1400, "height": 860}


def main() -> int:
    """Set up, serve, backfill, look; True when every page showed what it should."""
    args = _arguments()
    with tempfile.TemporaryDirectory(prefix="browser-check-") as scratch:
        env = _environment(Path(scratch))
        with _dagster_dev(env, args.port, Path(scratch) / "dagster-dev.log"):
            _backfill(env, args.days)
            _wait_for_alerts(env)
            failures = _look(f"http://127.0.0.1:{args.port}", args.chromium, day=_days(args.days)[1].isoformat())
    for failure in failures:
        print(f"FAILED: {failure}")
    print("browser check passed" if not failures else f"{len(failures)} checks failed")
    return 1 if failures else 0


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=21, help="days to backfill before today (default 21: enough history for trend anomalies)")
    parser.add_argument("--port", type=int, default=3333)
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="Chromium binary Playwright drives")
    return parser.parse_args()


def _environment(scratch: Path) -> dict[str, str]:
    """A private instance (with the repo's dagster.yaml: pool limit, no telemetry) and data dir; the embedded simulator."""
    home = scratch / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    env = {key: value for key, value in os.environ.items() if not key.startswith("MWS_") and key != "ORDERS_ALERT_WEBHOOK_URL"}
    env.update(DAGSTER_HOME=str(home), ORDERS_DATA_DIR=str(scratch / "data"))
    return env


@contextmanager
def _dagster_dev(env: dict[str, str], port: int, log: Path) -> Iterator[None]:
    """`dagster dev` in its own process group, stopped with everything it started."""
    command = [str(BIN / "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]
    with open(log, "wb") as output:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_until_serving(f"http://127.0.0.1:{port}/server_info", process, log)
        print(f"dagster dev is serving on http://127.0.0.1:{port}", flush=True)
        yield
    finally:
        _stop_group(process)


def _wait_until_serving(url: str, process: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"dagster dev exited early:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise SystemExit(f"dagster dev did not answer on {url} within {timeout:.0f} s")


def _stop_group(process: subprocess.Popen) -> None:
    """SIGTERM the whole group (webserver, daemon, code servers), then SIGKILL whatever is left of it."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        pass
    except ProcessLookupError:
        return
    time.sleep(2)
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def _backfill(env: dict[str, str], days: int) -> None:
    """The CLI backfill (one run per day, then the marts) into the instance the UI reads."""
    start, end = _days(days)
    command = [str(BIN / "orders-pipeline"), "backfill", start.isoformat(), end.isoformat()]
    print("$ " + " ".join(command[-3:]), flush=True)
    subprocess.run(command, cwd=REPO, env=env, check=True, stderr=subprocess.DEVNULL)


def _days(days: int) -> tuple[date, date]:
    """The backfilled range: `days` complete days ending yesterday (UTC)."""
    today = datetime.now(timezone.utc).date()
    return today - timedelta(days=days), today - timedelta(days=1)


def _wait_for_alerts(env: dict[str, str], timeout: float = 180) -> None:
    """The daemon's mart_alerts_sensor should launch a mart_alerts run after the marts refreshed."""
    import dagster as dg

    os.environ["DAGSTER_HOME"] = env["DAGSTER_HOME"]
    instance = dg.DagsterInstance.get()
    deadline = time.monotonic() + timeout
    print("waiting for mart_alerts_sensor to launch its run …", flush=True)
    while time.monotonic() < deadline:
        if instance.get_latest_materialization_event(dg.AssetKey("mart_alerts")):
            print("mart_alerts materialized by the sensor's run", flush=True)
            return
        time.sleep(3)
    print("WARNING: no mart_alerts materialization yet; the alerts page check will fail", flush=True)


def _look(base: str, chromium: str, day: str) -> list[str]:
    """Open each page, assert on its text, take its screenshot; return what failed."""
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport=VIEWPORT)
        _open(page, base + "/asset-groups")
        _dismiss_welcome(page)
        _show_whole_lineage(page)
        failures += _expect(page, ["orders", "order_items", "stg_orders", "stuck_orders", "sales_charts", "mart_alerts"], "asset-graph.png")
        _open(page, f"{base}/assets/orders?view=partitions&partition={day}")
        failures += _expect(page, ["Materialized", "complete", "covered_until", "api_calls_total", "quarantined_values"], "orders-partition.png")
        _open(page, base + "/assets/stuck_orders?view=checks")
        failures += _expect(page, ["no_stuck_orders", "unique_amazon_order_id"], "stuck-orders-checks.png")
        _open(page, base + "/assets/sales_charts")
        _show_markdown(page, 0)
        if not page.locator('img[src^="data:image/svg+xml"]').count():
            failures.append("/assets/sales_charts: the SKU trend chart is not rendered as an image")
        failures += _expect(page, ["sku_trends", "7-day average", "seller_sku"], "sales-charts.png")
        _open(page, base + "/assets/mart_alerts")
        failures += _expect(page, ["new_stuck_orders", "new_trend_anomalies", "webhook"])
        _show_markdown(page, 0)
        failures += _expect(page, ["New stuck orders", "New SKU trend anomalies"], "alerts.png")
        browser.close()
    return failures


def _show_whole_lineage(page) -> None:
    """Expand the groups (graph background menu), hide the side panels and zoom out one step."""
    width, height = VIEWPORT["width"], VIEWPORT["height"]
    page.mouse.click(width - 200, height - 60, button="right")
    page.get_by_role("menuitem", name="Expand all groups").click()
    page.get_by_text("Hide navigation").click()
    page.mouse.click(340, 80)  # the asset-tree panel's toggle, once the navigation is narrow
    page.mouse.click(width - 27, height - 149)  # the graph's zoom-out button
    page.wait_for_timeout(1_000)


def _open(page, url: str) -> None:
    page.goto(url)
    page.wait_for_load_state("networkidle")


def _expect(page, texts: list[str], screenshot: str | None = None) -> list[str]:
    """Wait for each text to render, then save the screenshot if asked; the texts that never showed are failures."""
    missing = []
    for text in texts:
        try:
            page.get_by_text(text, exact=False).first.wait_for(timeout=15_000)
        except Exception:  # noqa: BLE001 (Playwright's TimeoutError: report it and go on)
            missing.append(text)
    if screenshot:
        page.screenshot(path=str(SCREENSHOTS / screenshot))
    print(f"{page.url}: {'ok' if not missing else 'MISSING ' + ', '.join(missing)}", flush=True)
    return [f"{page.url}: no {text!r} on the page" for text in missing]


def _show_markdown(page, index: int) -> None:
    """Markdown metadata opens in a dialog from its '[Show Markdown]' link."""
    link = page.get_by_text("[Show Markdown]").nth(index)
    link.wait_for(timeout=15_000)
    link.click()
    page.wait_for_timeout(1_000)


def _dismiss_welcome(page) -> None:
    """A fresh instance greets with a 'Join the Dagster community' dialog; skip it."""
    try:
        page.get_by_role("button", name="Skip").click(timeout=10_000)
    except Exception:  # noqa: BLE001 (no dialog this time)
        pass


if __name__ == "__main__":
    sys.exit(main())
