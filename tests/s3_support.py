"""A real S3 protocol server on loopback (moto's standalone server) and a TCP relay that stalls an upload on purpose."""

from __future__ import annotations

import logging
import socket
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pyarrow.fs as pafs
from moto.server import ThreadedMotoServer

START_SECONDS = 30.0


@dataclass
class S3Server:
    """A running moto server and a pyarrow filesystem pointed at it (test credentials)."""

    url: str

    def filesystem(self) -> pafs.S3FileSystem:
        return pafs.S3FileSystem(endpoint_override=self.url, region="us-east-1", access_key="testing",
                                 secret_key="testing", allow_bucket_creation=True)

    def new_bucket(self) -> str:
        """A fresh, empty bucket."""
        bucket = f"orders-{uuid.uuid4().hex[:12]}"
        self.filesystem().create_dir(bucket)
        return bucket

    def keys(self, base: str) -> dict[str, int]:
        """Every object under `base` ("bucket/prefix") and its size."""
        infos = self.filesystem().get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
        return {info.path[len(base) + 1:]: info.size for info in infos if info.type == pafs.FileType.File}

    @contextmanager
    def authenticating(self) -> Iterator[None]:
        """Make the server check every request's access key against its IAM users (none exist: all are refused)."""
        self._reset_auth(b"0")
        try:
            yield
        finally:
            self._reset_auth(b"inf")

    def _reset_auth(self, count: bytes) -> None:
        request = urllib.request.Request(f"{self.url}/moto-api/reset-auth", data=count, method="POST",
                                         headers={"Content-Type": "application/octet-stream"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200


@contextmanager
def moto_server() -> Iterator[S3Server]:
    """moto's ThreadedMotoServer on 127.0.0.1 and a free port, started and stopped within bounds."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    starter = threading.Thread(target=server.start, daemon=True)
    starter.start()
    starter.join(START_SECONDS)
    assert not starter.is_alive(), f"moto server did not start within {START_SECONDS} s"
    host, port = server.get_host_and_port()
    try:
        yield S3Server(f"http://{host}:{port}")
    finally:
        stopper = threading.Thread(target=server.stop, daemon=True)
        stopper.start()
        stopper.join(START_SECONDS)


class StallingRelay:
    """A loopback TCP relay to `port` that forwards the first `limit` bytes clients send, then stops reading (the
    client is left blocked in the middle of a request body) and sets `stalled`."""

    def __init__(self, port: int, limit: int) -> None:
        self.target = ("127.0.0.1", port)
        self.limit = limit
        self.forwarded = 0
        self.stalled = threading.Event()
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._sockets: list[socket.socket] = [self._listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._closing.set()
        for sock in self._sockets:
            sock.close()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            upstream = socket.create_connection(self.target, timeout=30)
            self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, counted: bool) -> None:
        try:
            while chunk := source.recv(65536):
                if counted:
                    with self._lock:
                        room = self.limit - self.forwarded
                        self.forwarded += min(room, len(chunk))
                    if room < len(chunk):
                        target.sendall(chunk[:max(room, 0)])
                        self.stalled.set()
                        self._closing.wait()  # read nothing more: the sender blocks once its buffers are full
                        return
                target.sendall(chunk)
        except OSError:
            pass
