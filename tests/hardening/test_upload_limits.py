"""Request bodies are bounded where they arrive: the site's own server (as `make run`
starts it) with a small MAX_UPLOAD_BYTES refuses a declared oversized body before reading
it, cuts a chunked one at the limit, and keeps its memory flat while it accepts a large
upload. Memory is the server process's peak resident size (VmHWM), not a timing."""

import json
import os
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.conftest import _stop, login, start_server
from tests.hardening.conftest import TALLY

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]
# Each refusal below is one bad input in the hardening tally ("N tried, N handled"):
# tried when its test starts, handled once every assertion held.

LIMIT = 64_000_000
# The server may hold a few of Uvicorn's 64 kB pieces and Django's 2 MB in-memory spool:
# anything near the body's size means the body piled up in memory.
MEMORY_SLACK = LIMIT // 4


@dataclass
class SmallSite:
    url: str
    pid: int
    tmp: Path  # the server's temporary folder: where Django spools request bodies


@pytest.fixture(scope="module")
def small_site(live_env, logs_dir, tmp_path_factory) -> Iterator[SmallSite]:
    tmp = tmp_path_factory.mktemp("upload-limits-tmp")
    env = {**live_env, "MAX_UPLOAD_BYTES": str(LIMIT), "TMPDIR": str(tmp)}
    proc, url = start_server(env, logs_dir / "web-upload-limits.log")
    yield SmallSite(url, proc.pid, tmp)
    _stop(proc)


def left_in(pid: int, folder: Path) -> list[str]:
    """Files in `folder` (the server's temporary folder) that still exist or that the
    server still holds open, once it had a moment to close them. Django spools a request
    body to an unnamed temporary file: only the process's open files show it."""
    for _ in range(50):
        left = [str(p) for p in folder.iterdir()]
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except FileNotFoundError:  # closed meanwhile
                continue
            if target.startswith(str(folder)):
                left.append(target)
        if not left:
            break
        time.sleep(0.1)
    return left


def peak_rss(pid: int) -> int:
    """The process's peak resident size so far, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for process {pid}")


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def read_response(sock: socket.socket, json_body: bool = True) -> tuple[int, dict | None]:
    """Status and JSON body of the response waiting on the socket (read even after the
    server reset a connection that was still sending: the answer came first)."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 "), data[:200]
    return int(head.split()[1]), json.loads(body or b"null") if json_body else None


def send_until_refused(sock: socket.socket, pieces: Iterator[bytes]) -> int:
    """Send until the server stops taking bytes; the number of bytes sent."""
    sent = 0
    try:
        for piece in pieces:
            sock.sendall(piece)
            sent += len(piece)
    except (BrokenPipeError, ConnectionResetError):
        pass
    return sent


def test_a_declared_oversized_body_is_refused_before_it_is_read(small_site):
    TALLY["tried"] += 1
    url = small_site.url
    with connect(url) as sock:
        # Only the head: the answer cannot wait for a body that never comes.
        sock.sendall(
            b"POST /api/lectures/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: multipart/form-data; boundary=x\r\n"
            b"Content-Length: 3000000000\r\n\r\n"
        )
        status, body = read_response(sock)
    assert status == 413
    assert body["detail"] == "This upload is 3 GB; the limit is 64 MB."
    # The server is still there for the next person.
    assert requests.get(url + "/accounts/login/", timeout=10).status_code == 200
    TALLY["handled"] += 1


def test_a_client_still_sending_reads_its_413(small_site):
    """A browser sends the whole file before it reads: closing the connection stops it,
    and the 413 sent before the close is still there to read."""
    TALLY["tried"] += 1
    url = small_site.url
    with connect(url) as sock:
        sock.sendall(
            b"POST /api/lectures/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/octet-stream\r\nContent-Length: 200000000\r\n\r\n"
        )
        sent = send_until_refused(sock, (bytes(65536) for _ in range(200_000_000 // 65536)))
        status, body = read_response(sock)
    assert status == 413
    assert "the limit is 64 MB" in body["detail"]
    assert sent < 200_000_000 // 2, "the server read the refused body"
    TALLY["handled"] += 1


def test_endless_headers_are_refused(small_site):
    """The request head is bounded too (sersite.server.MAX_HEAD_BYTES): a client cannot
    fill the server's memory with headers that never end."""
    TALLY["tried"] += 1
    before = peak_rss(small_site.pid)
    with connect(small_site.url) as sock:
        sock.sendall(b"GET /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        line = b"X-Padding: " + b"a" * 1000 + b"\r\n"
        sent = send_until_refused(sock, (line for _ in range(LIMIT // len(line))))
        status, _ = read_response(sock, json_body=False)
    assert status == 400
    assert sent < LIMIT // 2, "the server kept reading the head"
    assert peak_rss(small_site.pid) - before < MEMORY_SLACK
    assert requests.get(small_site.url + "/accounts/login/", timeout=10).status_code == 200
    TALLY["handled"] += 1


def chunked(total: int, piece: int = 256 * 1024) -> Iterator[bytes]:
    block = bytes(piece)
    for _ in range(total // piece):
        yield b"%x\r\n" % piece + block + b"\r\n"
    yield b"0\r\n\r\n"


def test_a_chunked_oversized_body_is_cut_at_the_limit(small_site):
    TALLY["tried"] += 1
    url, pid = small_site.url, small_site.pid
    before = peak_rss(pid)
    total = 5 * LIMIT
    with connect(url) as sock:
        sock.sendall(
            b"POST /api/lectures/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        sent = send_until_refused(sock, chunked(total))
        status, body = read_response(sock)
    assert status == 413
    assert body["detail"] == "This upload is too large; the limit is 64 MB."
    assert sent < 2 * LIMIT, f"the server read {sent} bytes of a body it refused"
    assert peak_rss(pid) - before < MEMORY_SLACK
    # The part Django had spooled to a temporary file went with the request.
    assert left_in(pid, small_site.tmp) == []
    assert requests.get(url + "/accounts/login/", timeout=10).status_code == 200
    TALLY["handled"] += 1


class WavUpload:
    """A multipart body holding a silent WAV (48 kHz stereo) made on the fly, with its
    length known up front: sent with a Content-Length, as a browser sends a form."""

    boundary = "sersite-upload-limit"

    def __init__(self, data_bytes: int) -> None:
        self.data_bytes = data_bytes
        self.head = (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\nbig\r\n'
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="file"; '
            'filename="big.wav"\r\nContent-Type: audio/wav\r\n\r\n'
        ).encode()
        self.wav_head = (
            b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVEfmt "
            + struct.pack("<IHHIIHH", 16, 1, 2, 48_000, 48_000 * 4, 4, 16)
            + b"data" + struct.pack("<I", data_bytes)
        )  # fmt: skip
        self.tail = f"\r\n--{self.boundary}--\r\n".encode()

    def __len__(self) -> int:
        return len(self.head) + len(self.wav_head) + self.data_bytes + len(self.tail)

    def __iter__(self) -> Iterator[bytes]:
        yield self.head + self.wav_head
        block = bytes(1024 * 1024)
        left = self.data_bytes
        while left:
            yield block[: min(left, len(block))]
            left -= min(left, len(block))
        yield self.tail


def test_a_large_accepted_upload_keeps_memory_flat(small_site, make_user, emotion_model):
    url, pid = small_site.url, small_site.pid
    make_user("teacher")
    http = login(url, "teacher")

    def post(body: WavUpload) -> requests.Response:
        headers = {"Content-Type": f"multipart/form-data; boundary={body.boundary}"}
        answer = http.post(url + "/api/lectures/", data=body, headers=headers, timeout=120)
        assert answer.status_code == 201, answer.text
        return answer

    # A small upload first loads the code of the upload path (the audio probe and its
    # libraries), so what follows measures the body alone.
    post(WavUpload(1_000_000))
    before = peak_rss(pid)
    body = WavUpload(LIMIT - 2_000_000)
    assert len(body) > 3 * MEMORY_SLACK
    answer = post(body)
    assert answer.json()["size_bytes"] == len(body.wav_head) + body.data_bytes
    assert peak_rss(pid) - before < MEMORY_SLACK
    assert left_in(pid, small_site.tmp) == []  # the spooled body and the upload's copy
