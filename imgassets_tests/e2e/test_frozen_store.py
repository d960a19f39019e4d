"""A frozen object store: a loopback proxy in front of the moto S3 server that stops answering as
soon as an image upload starts (the endpoint accepts the request and never replies). ``imgassets
run`` must still end promptly on SIGTERM, with its JSON summary and exit code 1, and leave no
snapshot manifest behind."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from imgassets_tests.conftest import S3_ACCESS_KEY, S3_SECRET_KEY, command_env, jpeg_bytes

pytestmark = pytest.mark.slow


class FreezingProxy:
    """TCP proxy 127.0.0.1:<port> -> ``upstream``; a connection whose request bytes hold ``trigger``
    is frozen: nothing more is forwarded either way, the socket stays open."""

    def __init__(self, upstream: str, trigger: bytes) -> None:
        self.host, port = upstream.split(":")
        self.upstream_port = int(port)
        self.trigger = trigger
        self.frozen = threading.Event()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"127.0.0.1:{self.server.getsockname()[1]}"
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection((self.host, self.upstream_port))
            self.sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, dest: socket.socket, inspect: bool) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                return
            if not data:
                return
            if inspect and self.trigger in data:
                self.frozen.set()
            if self.frozen.is_set():
                continue  # swallow: the endpoint never answers
            try:
                dest.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        self.server.close()
        for sock in self.sockets:
            sock.close()


def test_sigterm_ends_a_run_stuck_on_a_frozen_store(tmp_path, s3_store):
    proxy = FreezingProxy(s3_store.endpoint, b"PUT /" + s3_store.bucket.encode() + b"/objects/sha256/")
    drive = tmp_path / "drive"
    (drive / "ana").mkdir(parents=True)
    for i in range(3):
        (drive / "ana" / f"{i}.jpg").write_bytes(jpeg_bytes(color=(i * 60, 9, 9)))
    env = command_env()
    env.update({"IMGASSETS_DEPLOYMENT": "production", "IMGASSETS_S3_ENDPOINT": proxy.endpoint,
                "IMGASSETS_S3_BUCKET": s3_store.bucket, "IMGASSETS_S3_ACCESS_KEY": S3_ACCESS_KEY,
                "IMGASSETS_S3_SECRET_KEY": S3_SECRET_KEY})
    proc = subprocess.Popen([sys.executable, "-m", "imgassets.cli", "run", "--json", "--shared-root", str(drive),
                             "--home", str(tmp_path / "home")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        assert proxy.frozen.wait(timeout=180), "the run never started uploading"
        time.sleep(2)  # stuck in the upload now
        assert proc.poll() is None
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert time.monotonic() - sent < 15, "SIGTERM took too long to end the run"
    finally:
        proc.kill()
        proxy.close()
    assert proc.returncode == 1, err[-3000:]
    [ana] = json.loads(out)["scientists"]
    assert ana["snapshot_id"] is None and "interrupted (SIGTERM or Ctrl-C)" in ana["error"]
    assert list(s3_store.list_keys("snapshots/")) == []


def test_a_frozen_endpoint_fails_a_request_within_its_bounded_waits(s3_store):
    from imgassets.core.store.s3 import S3ConnectionError, S3ObjectStore

    proxy = FreezingProxy(s3_store.endpoint, b"GET /" + s3_store.bucket.encode() + b"/frozen")
    store = S3ObjectStore(proxy.endpoint, S3_ACCESS_KEY, S3_SECRET_KEY, s3_store.bucket, retries=1, read_timeout=2)
    started = time.monotonic()
    try:
        with pytest.raises(S3ConnectionError, match=f"at http://{proxy.endpoint}: endpoint did not answer within 2 s "
                                                    r"\(the read timeout, 2 attempts\) while trying to get"):
            store.get_bytes("frozen/key")
    finally:
        proxy.close()
    assert time.monotonic() - started < (1 + 1) * (5 + 2) + 2  # (1 + retries) x (connect + read) + backoff
