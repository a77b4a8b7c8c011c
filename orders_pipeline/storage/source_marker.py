"""Which kind of source filled a data dir, recorded in `_source.json` at its root, so demo and real orders never mix.

A data dir is filled either by the embedded simulator (demo data, MWS_ENDPOINT unset) or by an API endpoint
(MWS_ENDPOINT set: real data, even when that endpoint is a simulator started by hand). The first run that writes
into a dir records the kind; a run of the other kind is refused before it calls the API or writes anything. A dir
that predates the marker is judged by its partition manifests (`embedded_simulator`); a partition without one
counts as real data, so unknown data is never mixed with demo orders.

With several accounts ($ORDERS_ACCOUNTS_FILE) each account's folders are judged alone, its marker at
`<root>/orders/account=NAME/_source.json`: a simulated account and a real one may share a data dir, since the
marts never add two accounts together; one account never mixes demo and real orders.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import date, datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

from orders_pipeline.storage.layout import MANIFEST_FILE, PART_FILE, RAW_TABLES, partition_dir

MARKER_FILE = "_source.json"
EMBEDDED = "embedded-simulator"
API = "api"


class MixedSourceError(ValueError):
    """A run would write one kind of source's orders into a data dir filled from the other kind."""


def claim_data_dir(root: Path, endpoint: str | None, account: str | None = None) -> None:
    """Refuse if `root` (its `account`'s folders, when given) holds data from the other kind of source than
    `endpoint` (None: the embedded simulator); otherwise record this kind there, once."""
    marker = marker_path(root, account)
    if not marker.exists() and refusal(root, endpoint, account) is None:
        _write_once(marker, {"kind": _kind(endpoint), "endpoint_host": _host(endpoint), "recorded_at": _now()})
    reason = refusal(root, endpoint, account)  # against our marker, or the one another run recorded first
    if reason:
        raise MixedSourceError(reason)


def marker_path(root: Path, account: str | None = None) -> Path:
    """Where the kind is recorded: the data dir's root, or the account's folder of the orders table."""
    return root / MARKER_FILE if account is None else partition_dir(root, "orders", date.min, account).parent / MARKER_FILE


def refusal(root: Path, endpoint: str | None, account: str | None = None) -> str | None:
    """Why a run using `endpoint` (None: the embedded simulator) may not write into `root` (for `account`), as one
    line naming the fix; None when it may."""
    marker = marker_path(root, account)
    recorded = _read_marker(marker) if marker.exists() else _inferred(root, account)
    if recorded is None or recorded.get("kind") == _kind(endpoint):
        return None
    if account is not None:
        return _account_refusal(root, endpoint, account, recorded)
    if recorded.get("kind") == API:
        return (
            f"MWS_ENDPOINT is not set, but ORDERS_DATA_DIR {root} holds real data from "
            f"{recorded.get('endpoint_host') or 'an API endpoint'}: refusing to add the embedded simulator's demo orders; "
            "set MWS_ENDPOINT and the MWS credentials for this run, or use another ORDERS_DATA_DIR for the demo"
        )
    if recorded.get("kind") == EMBEDDED:
        return (
            f"ORDERS_DATA_DIR {root} holds demo data from the embedded simulator: refusing to add orders from "
            f"{_host(endpoint)}; use another ORDERS_DATA_DIR for real data, or delete {root} (demo data only) first"
        )
    return f"{marker} is unreadable: delete it, and the next run infers the kind again from the partition manifests"


def _account_refusal(root: Path, endpoint: str | None, account: str, recorded: dict) -> str:
    """The refusal for one account of an accounts file: its folders hold the other kind of data."""
    folders = f"{root}/{{orders,order_items}}/account={account}"
    if recorded.get("kind") == API:
        return (
            f"account {account} has no endpoint in the accounts file, but {folders} holds real data from "
            f"{recorded.get('endpoint_host') or 'an API endpoint'}: refusing to add the embedded simulator's demo orders; "
            f"give account {account} its endpoint again, or use another account name for the demo"
        )
    if recorded.get("kind") == EMBEDDED:
        return (
            f"{folders} holds demo data from the embedded simulator: refusing to add orders from {_host(endpoint)} "
            f"to account {account}; use another account name for real data, or delete those folders (demo data only)"
        )
    return f"{marker_path(root, account)} is unreadable: delete it, and the next run infers the kind again from the partition manifests"


def _read_marker(marker: Path) -> dict:
    """The marker's content (`kind`, `endpoint_host`, `recorded_at`); empty when it cannot be read."""
    try:
        content = json.loads(marker.read_text())
    except (OSError, ValueError):
        return {}
    return content if isinstance(content, dict) else {}


def _inferred(root: Path, account: str | None) -> dict | None:
    """The kind of a data dir (an account's folders) written before the marker existed, from its partitions'
    manifests; None when it has no partition."""
    bases = [partition_dir(root, table, date.min, account).parent for table in RAW_TABLES]
    partitions = [part.parent for base in bases for part in base.glob(f"dt=*/{PART_FILE}")]
    if not partitions:
        return None
    embedded = all(_manifest_says_embedded(partition) for partition in partitions)
    return {"kind": EMBEDDED if embedded else API}


def _manifest_says_embedded(partition: Path) -> bool:
    """True only when the partition's manifest says the embedded simulator wrote it."""
    try:
        return json.loads((partition / MANIFEST_FILE).read_text()).get("embedded_simulator") is True
    except (OSError, ValueError, AttributeError):
        return False


def _write_once(marker: Path, content: dict) -> None:
    """Create the marker atomically, never over an existing one: a complete temp file hard-linked to its name."""
    marker.parent.mkdir(parents=True, exist_ok=True)
    temp = marker.parent / f".{MARKER_FILE}.tmp-{uuid.uuid4().hex}"
    try:
        with open(temp, "w") as handle:
            json.dump(content, handle, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temp, marker)
        except FileExistsError:
            pass  # another run recorded its kind first; the caller reads that one
    finally:
        temp.unlink(missing_ok=True)


def _kind(endpoint: str | None) -> str:
    return API if endpoint else EMBEDDED


def _host(endpoint: str | None) -> str | None:
    """The endpoint's host and port only (no scheme, path, query or user info), for the marker and messages."""
    if not endpoint:
        return None
    parts = urlsplit(endpoint)
    return f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
