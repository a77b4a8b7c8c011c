"""An exact set of strings that costs ~16 bytes a member in memory, so tracking a whole day stays flat."""

from __future__ import annotations

import os
import struct
import tempfile
from typing import Callable

import numpy as np

_LENGTH = struct.Struct("<I")
MERGE_EVERY = 4096


class KeySet:
    """Strings seen so far: 64-bit hashes and spill offsets in sorted numpy arrays, the strings in a temp file.

    A hash is only a filter: a hit is confirmed against the spilled string, so membership is exact even when
    two keys collide. The file is read only on hits (a repeated key, or a collision), never on a new key.
    """

    def __init__(self, hash_key: Callable[[str], int] = hash, merge_every: int = MERGE_EVERY) -> None:
        self._hash = hash_key
        self._merge_every = merge_every
        self._hashes = np.empty(0, np.int64)  # sorted
        self._offsets = np.empty(0, np.int64)  # where the string of each sorted hash is spilled
        self._recent: dict[int, list[int]] = {}  # hash -> spill offsets added since the last merge
        self._recent_count = 0
        self._spill = tempfile.TemporaryFile()  # unlinked at once: nothing to clean up, even after a crash
        self._spilled_bytes = 0

    def add(self, key: str) -> bool:
        """Add `key`; True when it was not in the set yet."""
        code = self._hash(key)
        if any(self._read(offset) == key for offset in self._offsets_of(code)):
            return False
        self._recent.setdefault(code, []).append(self._write(key))
        self._recent_count += 1
        if self._recent_count >= self._merge_every:
            self._merge()
        return True

    def __len__(self) -> int:
        return len(self._hashes) + self._recent_count

    def close(self) -> None:
        """Remove the spill file."""
        self._spill.close()

    def __enter__(self) -> KeySet:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _offsets_of(self, code: int) -> list[int]:
        """Spill offsets of every member whose hash is `code` (usually none, one for a repeat)."""
        start = int(np.searchsorted(self._hashes, code, "left"))
        end = start
        while end < len(self._hashes) and self._hashes[end] == code:
            end += 1
        return [*self._offsets[start:end].tolist(), *self._recent.get(code, ())]

    def _write(self, key: str) -> int:
        encoded = key.encode("utf-8", "surrogatepass")
        offset = self._spilled_bytes
        self._spill.write(_LENGTH.pack(len(encoded)) + encoded)
        self._spilled_bytes += _LENGTH.size + len(encoded)
        return offset

    def _read(self, offset: int) -> str:
        self._spill.flush()
        descriptor = self._spill.fileno()
        (length,) = _LENGTH.unpack(os.pread(descriptor, _LENGTH.size, offset))
        return os.pread(descriptor, length, offset + _LENGTH.size).decode("utf-8", "surrogatepass")

    def _merge(self) -> None:
        """Move the recent members into the sorted arrays (one insert pass, no Python object per member kept)."""
        codes = np.fromiter((code for code, offsets in self._recent.items() for _ in offsets), np.int64, self._recent_count)
        offsets = np.fromiter((offset for found in self._recent.values() for offset in found), np.int64, self._recent_count)
        order = np.argsort(codes, kind="stable")
        codes, offsets = codes[order], offsets[order]
        positions = np.searchsorted(self._hashes, codes)
        self._hashes = np.insert(self._hashes, positions, codes)
        self._offsets = np.insert(self._offsets, positions, offsets)
        self._recent, self._recent_count = {}, 0
