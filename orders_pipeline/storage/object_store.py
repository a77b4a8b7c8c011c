"""ORDERS_DATA_DIR=s3://bucket/prefix: the store every machine publishes to, and the local mirror each one works in.

Everything else in the package reads and writes local paths: `layout.data_dir()` is the mirror, laid out like any
data dir. This module moves whole files between the mirror and the store through pyarrow's S3 filesystem (the
standard AWS_* variables), and holds the commit protocol:

- **Push a raw day** (after its local commit): each changed Parquet object, items before orders, as one whole-object
  PUT (a reader sees the old object or the new one, never a part of one); then the day's manifests, the commit point
  (a day folder without `_manifest.json` is not committed and readers skip it); then the folder's stale objects go.
- **Pull**: one LIST per raw table; each committed day whose objects differ from the mirror's is fetched manifest
  first, written beside the old files and renamed over them; a day gone from the store goes from the mirror.
- A mirror file in sync with its object has the object's size, and its LastModified (whole seconds) as mtime, so a
  LIST alone tells what differs, with no state file. A day is locked (`flock`, one file per day) while a raw run
  works on it, so a build's pull on the same machine never replaces a day between its local commit and its push.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow.fs as pafs

from orders_pipeline.storage.files import fsync_dir, fsync_file, temp_path
from orders_pipeline.storage.layout import (
    DATA_DIR_ENV, LOCAL_DIR_ENV, MANIFEST_FILE, OBJECT_STORE_SCHEME, PART_FILE, bucket_and_prefix, mirror_dir,
)

DAY_FILES = (PART_FILE, MANIFEST_FILE)  # what a committed day folder holds, in push order
RAW_TABLES = ("order_items", "orders")  # push order: a reader never sees an order version without its items
MIRROR_MARKER = "_mirror.json"  # names the store a mirror belongs to, so a mirror never deletes foreign data
SOURCE_MARKER = "_source.json"  # which kind of source filled the data dir (see source_marker), shared through the store
LOCKS_DIR = Path("_state") / "locks"
COPY_CHUNK = 8 * 2**20
_FIXES = (  # pyarrow's error code -> what to check, for one-line errors
    ("NO_SUCH_BUCKET", "create the bucket, or fix the bucket name in ORDERS_DATA_DIR"),
    ("INVALID_ACCESS_KEY_ID", "check AWS_ACCESS_KEY_ID"),
    ("SIGNATURE_DOES_NOT_MATCH", "check AWS_SECRET_ACCESS_KEY"),
    ("ACCESS_DENIED", "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and the bucket's policy"),
    ("NETWORK_CONNECTION", "check AWS_ENDPOINT_URL and the network"),
)


class ObjectStoreError(ValueError):
    """The object store cannot be used or a transfer failed; one line naming the cause and the fix."""


def object_store_uri() -> str | None:
    """$ORDERS_DATA_DIR when it names an object store, else None (a local data dir)."""
    configured = os.environ.get(DATA_DIR_ENV, "")
    return configured if configured.startswith(OBJECT_STORE_SCHEME) else None


def remote_store() -> ObjectStore | None:
    """The object store behind $ORDERS_DATA_DIR, checked (bucket and credentials) before anything else; None for a
    local data dir."""
    uri = object_store_uri()
    if uri is None:
        return None
    store = ObjectStore.open(uri)
    store.check()
    return store


@dataclass(frozen=True)
class _Remote:
    """One object as a LIST or HEAD reports it."""

    key: str
    size: int
    seconds: int  # LastModified, whole seconds


@dataclass
class ObjectStore:
    """An `s3://bucket/prefix` data dir and this machine's mirror of it; paths are handed in as mirror paths."""

    uri: str
    filesystem: pafs.FileSystem
    base: str  # "bucket/prefix", as pyarrow names it
    mirror: Path

    @classmethod
    def open(cls, uri: str) -> ObjectStore:
        """The store of `uri` through pyarrow's S3 filesystem: credentials from the AWS chain (AWS_ACCESS_KEY_ID, …),
        AWS_REGION (or AWS_DEFAULT_REGION) and AWS_ENDPOINT_URL for S3-compatible stores."""
        bucket, prefix = bucket_and_prefix(uri)
        filesystem = pafs.S3FileSystem(
            region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None,
            endpoint_override=os.environ.get("AWS_ENDPOINT_URL") or None,
        )
        return cls(uri, filesystem, f"{bucket}/{prefix}".rstrip("/"), mirror_dir(uri))

    # ----- checks

    def check(self) -> None:
        """Fail in one line when the bucket is missing, the credentials are refused or the endpoint is unreachable,
        or when the mirror folder holds data that is not this store's."""
        bucket = self.base.split("/", 1)[0]
        with self._translated("cannot use the bucket"):
            if self.filesystem.get_file_info(bucket).type == pafs.FileType.NotFound:
                raise ObjectStoreError(f"{DATA_DIR_ENV}={self.uri}: bucket {bucket!r} does not exist (or is not "
                                       "visible with these credentials) -> create it, or fix ORDERS_DATA_DIR")
            self.filesystem.get_file_info(pafs.FileSelector(self.base, allow_not_found=True))
        self._claim_mirror()

    def _claim_mirror(self) -> None:
        """Record which store the mirror folder belongs to; refuse a folder that holds anything else (hidden files
        aside: a write probe, another process's temp file)."""
        marker = self.mirror / MIRROR_MARKER
        if not marker.exists():
            entries = [entry.name for entry in self.mirror.iterdir()] if self.mirror.is_dir() else []
            if any(not name.startswith(".") for name in entries) and not marker.exists():  # not claimed meanwhile
                raise ObjectStoreError(f"{LOCAL_DIR_ENV} {self.mirror} is not empty and is no mirror of {self.uri}: "
                                       f"refusing to replace its files -> point {LOCAL_DIR_ENV} at an empty folder")
            _write_atomically(marker, json.dumps({"store": self.uri}).encode())
        with contextlib.suppress(OSError, ValueError, AttributeError):
            if json.loads(marker.read_text()).get("store") == self.uri:
                return
        raise ObjectStoreError(f"{LOCAL_DIR_ENV} {self.mirror} mirrors another store ({marker}) -> point "
                               f"{LOCAL_DIR_ENV} at an empty folder for {self.uri}")

    # ----- raw days

    @contextlib.contextmanager
    def checked_out(self, folders: Sequence[Path]) -> Iterator[None]:
        """Hold the partition folders (and the data dir's source marker) as the store has them, locked against this
        machine's other pulls, while a raw run merges into them."""
        with contextlib.ExitStack() as locks:
            for day in dict.fromkeys(map(self._day_of, folders)):  # one lock (one open file) per day, whatever the tables
                locks.enter_context(self._locked(day, wait=True))
            for folder in folders:
                self._pull_folder(folder, _committed(self._listed(folder)))
            self.pull_source_marker()
            yield

    def push_partitions(self, folders: Sequence[Path]) -> None:
        """Publish committed partition folders: each changed Parquet file in the given order, then every manifest
        (the commit point), then any other object under the folders. Call it inside `checked_out`."""
        listed = {folder: self._listed(folder) for folder in folders}
        for name in DAY_FILES:  # the part file of every folder before any manifest
            for folder in folders:
                if (folder / name).exists():
                    self._upload(folder / name, listed[folder].get(name))
        for folder in folders:
            kept = {name for name in DAY_FILES if (folder / name).exists()}
            stale = [remote.key for name, remote in listed[folder].items() if name not in kept]
            with self._translated("cannot remove stale objects"):
                for key in stale:
                    self.filesystem.delete_file(key)
        self._push_source_marker()

    def pull_raw(self) -> list[str]:
        """Bring the mirror's raw tables to the store's committed days (one LIST per table) and return the day
        folders fetched or removed; a day a raw run of this machine holds is left to the next pull."""
        changed = []
        for table in RAW_TABLES:
            remote = self._listed_tree(table)
            committed = {folder: _committed(objects) for folder, objects in remote.items() if MANIFEST_FILE in objects}
            local = {path for path in (self.mirror / table).rglob("dt=*") if path.is_dir() and any(path.iterdir())}
            for folder in sorted(local | set(committed)):
                objects = committed.get(folder, {})
                if not self._in_sync(folder, objects):
                    with self._locked(self._day_of(folder), wait=False) as held:
                        if held:
                            self._pull_folder(folder, objects)
                            changed.append(folder.relative_to(self.mirror).as_posix())
        return changed

    # ----- other files (marts, charts)

    def push_files(self, paths: Iterable[Path]) -> None:
        """Publish whole files of the mirror (a mart, a chart) that differ from their objects, one PUT each."""
        for path in paths:
            self._upload(path, self._listed(path.parent).get(path.name))

    def pull_files(self, folder: Path) -> None:
        """Bring the files directly in a mirror folder (e.g. marts/) to the objects the store holds there."""
        listed = self._listed(folder)
        for name, remote in listed.items():
            self._download(remote, folder / name)

    # ----- transfers

    def key(self, path: Path) -> str:
        """The object key (or prefix) of a mirror path."""
        relative = path.relative_to(self.mirror).as_posix()
        return self.base if relative == "." else f"{self.base}/{relative}"

    def _listed(self, folder: Path) -> dict[str, _Remote]:
        """The objects directly in a mirror folder's prefix, by name (one LIST)."""
        with self._translated("cannot list"):
            infos = self.filesystem.get_file_info(pafs.FileSelector(self.key(folder), allow_not_found=True))
        return {info.base_name: _remote(info) for info in infos if info.type == pafs.FileType.File}

    def _listed_tree(self, table: str) -> dict[Path, dict[str, _Remote]]:
        """Every object under a table's prefix, grouped by mirror folder (one recursive LIST)."""
        with self._translated("cannot list"):
            infos = self.filesystem.get_file_info(
                pafs.FileSelector(f"{self.base}/{table}", allow_not_found=True, recursive=True))
        tree: dict[Path, dict[str, _Remote]] = {}
        for info in infos:
            if info.type == pafs.FileType.File:
                folder = self.mirror / Path(info.path[len(self.base) + 1:]).parent
                tree.setdefault(folder, {})[info.base_name] = _remote(info)
        return tree

    def _in_sync(self, folder: Path, objects: dict[str, _Remote]) -> bool:
        """Whether a mirror folder holds exactly these objects, each as last pushed or pulled."""
        local = {path.name: path for path in folder.iterdir() if path.is_file()} if folder.is_dir() else {}
        return local.keys() == objects.keys() and all(_same(local[name], objects[name]) for name in objects)

    def _pull_folder(self, folder: Path, committed: dict[str, _Remote]) -> None:
        """Make a mirror folder hold a day's committed objects (manifest read first, installed last) and nothing
        else; nothing at all when the store has not committed the day."""
        manifest = committed.get(MANIFEST_FILE)
        content = self._read(manifest.key) if manifest and not _same(folder / MANIFEST_FILE, manifest) else None
        if PART_FILE in committed:
            self._download(committed[PART_FILE], folder / PART_FILE)
        if content is not None:
            _write_atomically(folder / MANIFEST_FILE, content, manifest.seconds)
        if folder.is_dir():
            for path in folder.iterdir():
                if path.is_file() and path.name not in committed:
                    path.unlink()
            fsync_dir(folder)

    def _upload(self, path: Path, remote: _Remote | None) -> None:
        """PUT a mirror file whole unless its object already holds it; then stamp the file as in sync."""
        if remote is not None and _same(path, remote):
            return
        before = path.stat()
        key = self.key(path)
        with self._translated(f"cannot upload {key}"):
            with open(path, "rb") as source, self.filesystem.open_output_stream(key) as target:
                shutil.copyfileobj(source, target, COPY_CHUNK)  # one PUT, or a multipart upload completed at close
            uploaded = _remote(self.filesystem.get_file_info(key))
        after = path.stat()
        if (after.st_ino, after.st_mtime_ns, after.st_size) == (before.st_ino, before.st_mtime_ns, uploaded.size):
            os.utime(path, ns=(uploaded.seconds * 10**9, uploaded.seconds * 10**9))

    def _download(self, remote: _Remote, path: Path) -> None:
        """Fetch an object beside its mirror file and rename it over (unless already in sync)."""
        if _same(path, remote):
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = temp_path(path.parent)
        try:
            with self._translated(f"cannot download {remote.key}"):
                pafs.copy_files(remote.key, str(temp), source_filesystem=self.filesystem,
                                destination_filesystem=pafs.LocalFileSystem())
            fsync_file(temp)
            os.utime(temp, ns=(remote.seconds * 10**9, remote.seconds * 10**9))
            os.replace(temp, path)
        finally:
            temp.unlink(missing_ok=True)

    def _read(self, key: str) -> bytes:
        with self._translated(f"cannot read {key}"), self.filesystem.open_input_stream(key) as stream:
            return stream.read()

    def pull_source_marker(self) -> None:
        """The store's source marker into the mirror, so demo and real data never mix across machines."""
        remote = self._listed(self.mirror).get(SOURCE_MARKER)
        if remote is not None:
            self._download(remote, self.mirror / SOURCE_MARKER)

    def _push_source_marker(self) -> None:
        """The mirror's source marker to the store when the store has none yet."""
        marker = self.mirror / SOURCE_MARKER
        if marker.exists() and SOURCE_MARKER not in self._listed(self.mirror):
            self._upload(marker, None)

    def _day_of(self, folder: Path) -> str:
        """What names a day in every raw table: a partition folder's path below its table (`dt=...`, or with more
        levels such as `account=NAME/dt=...`)."""
        return Path(*folder.relative_to(self.mirror).parts[1:]).as_posix()

    @contextlib.contextmanager
    def _locked(self, day: str, *, wait: bool) -> Iterator[bool]:
        """An exclusive lock on one day (both tables' folders) among this machine's processes; yields False when
        `wait` is False and another process holds it."""
        lock_path = self.mirror / LOCKS_DIR / f"{day.replace('/', '~')}.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def _translated(self, doing: str) -> Iterator[None]:
        """pyarrow's S3 errors as one ObjectStoreError line naming the fix (never a credential)."""
        try:
            yield
        except OSError as error:
            text = " ".join(str(error).split())
            fix = next((fix for code, fix in _FIXES if code in text), "check the AWS_* variables and ORDERS_DATA_DIR")
            raise ObjectStoreError(f"{DATA_DIR_ENV}={self.uri}: {doing}: {text} -> {fix}") from None


def _committed(objects: dict[str, _Remote]) -> dict[str, _Remote]:
    """The objects of a day folder that belong to its committed day: none before its manifest exists."""
    return {name: objects[name] for name in DAY_FILES if name in objects} if MANIFEST_FILE in objects else {}


def _remote(info: pafs.FileInfo) -> _Remote:
    return _Remote(info.path, info.size, int(info.mtime.timestamp()))


def _same(path: Path, remote: _Remote) -> bool:
    """Whether a mirror file is in sync with its object: same size, and stamped with its LastModified."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return False
    return stat.st_size == remote.size and stat.st_mtime_ns == remote.seconds * 10**9


def _write_atomically(path: Path, content: bytes, seconds: int | None = None) -> None:
    """Write a small file through a temp file and a rename (stamped with `seconds` when it mirrors an object)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path(path.parent)
    try:
        temp.write_bytes(content)
        fsync_file(temp)
        if seconds is not None:
            os.utime(temp, ns=(seconds * 10**9, seconds * 10**9))
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)

