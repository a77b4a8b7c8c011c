"""The assets' side of an s3:// data dir: pull before reading the mirror, push after a local commit, fail in one line.

With a local data dir every helper here does nothing, so the assets behave exactly as without object storage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from orders_pipeline.storage.layout import marts_dir
from orders_pipeline.storage.object_store import ObjectStore, ObjectStoreError, remote_store


@contextmanager
def checked_out_days(span: str, folders: list[Path]) -> Iterator[Callable[[], None]]:
    """With an s3:// data dir, the days' partition folders checked out of the store (locked on this machine and
    pulled, before any API call) and a `publish` that pushes them once committed locally; else nothing to do."""
    store = _store(f"Partition {span} not written")
    if store is None:
        yield lambda: None
        return

    def publish() -> None:
        try:
            store.push_partitions(folders)
        except ObjectStoreError as error:
            raise dg.Failure(description=f"Partition {span} written to {store.mirror} but not published: {error}") from None

    try:
        with store.checked_out(folders):
            yield publish
    except ObjectStoreError as error:
        raise dg.Failure(description=f"Partition {span} not written: {error}", allow_retries=False) from None


def pulled_store(log: dg.DagsterLogManager, folders: Iterable[Path] = (), raw: bool = False) -> ObjectStore | None:
    """With an s3:// data dir, the store after bringing the mirror up to it (the raw days when `raw`, and the files of
    `folders`, e.g. marts/); None for a local data dir."""
    store = _store("not built")
    if store is None:
        return None
    try:
        days = store.pull_raw() if raw else []
        for folder in folders:
            store.pull_files(folder)
    except ObjectStoreError as error:
        raise dg.Failure(description=f"not built: {error}") from None
    fetched = f": {len(days)} raw day folder(s) fetched or removed" if raw else ""
    log.info(f"mirror {store.mirror} brought up to {store.uri}{fetched}")
    return store


def publish_files(store: ObjectStore | None, paths: Iterable[Path], log: dg.DagsterLogManager) -> None:
    """Push files written to the mirror (marts, charts) to the store, one whole-object PUT each."""
    if store is None:
        return
    paths = list(paths)
    try:
        store.push_files(paths)
    except ObjectStoreError as error:
        raise dg.Failure(description=f"written to {store.mirror} but not published: {error}") from None
    log.info(f"published {len(paths)} file(s) to {store.uri}")


def readable_marts(paths: dict[str, str]) -> dict[str, str]:
    """Mart files as this process can read them: with an s3:// data dir, this machine's mirror of marts/ brought up to
    the store (a recorded path is the mirror of the machine that built the mart); else the recorded paths."""
    store = _store("marts not read")
    if store is None:
        return paths
    try:
        store.pull_files(marts_dir(store.mirror))
    except ObjectStoreError as error:
        raise dg.Failure(description=f"marts not read: {error}") from None
    return {name: str(marts_dir(store.mirror) / Path(path).name) for name, path in paths.items()}


def _store(failed: str) -> ObjectStore | None:
    """The checked store, or None for a local data dir; a bad bucket, credential or mirror fails the run in one line."""
    try:
        return remote_store()
    except (ObjectStoreError, ValueError) as error:
        raise dg.Failure(description=f"{failed}: {error}", allow_retries=False) from None
