"""Large uploads against a live site while other people use it.

Starts the site's own server (sersite.server, as `make run` starts it, default
MAX_UPLOAD_BYTES of 2 GiB) against a scratch SQLite database, media and temporary folder
(all under one temporary folder removed at the end) and a Redis key prefix of its own.
Then, while --clients signed-in people load pages in a loop:

1. one teacher uploads a --accepted byte lecture (a WAV header, 48 kHz stereo, followed
   by silence made on the fly: nothing that size is written by the bench) to
   POST /api/lectures/, with its Content-Length as a browser sends it: expected 201;
2. a few seconds into it, another upload declares --refused bytes and keeps sending as
   a browser does: expected 413, read while the body is still being sent.

Prints the server's peak resident memory (VmHWM, target < 400 MB), the time from the
refused request's first byte to its 413 (target < 1 s) and the other clients' p95 page
latency over the uploads (target < 1 s), each with its ratio to the target (at most 1
meets it), then `key: value` lines.

    .venv/bin/python bench/upload.py [--clients 20] [--accepted 1.9e9] [--refused 2.3e9]
"""

import argparse
import json
import os
import shutil
import socket
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

# bench/load.py (beside this script) prepares a scratch site the same way.
from load import cleanup_redis, free_port, percentile, prepare, sign_in, start

ROOT = Path(__file__).resolve().parent.parent
PEAK_RSS_TARGET = 400e6
REFUSAL_TARGET_S = 1.0
PAGE_P95_TARGET_S = 1.0
PAGES = ["/", "/lectures/", "/jobs/"]
BOUNDARY = "sersite-upload-bench"


class WavUpload:
    """A multipart body holding a silent WAV, made on the fly, its length known up front
    (requests then sends a Content-Length, as a browser does)."""

    def __init__(self, total_bytes: int) -> None:
        self.head = (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="title"\r\n\r\nbench\r\n'
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
            'filename="lecture.wav"\r\nContent-Type: audio/wav\r\n\r\n'
        ).encode()
        self.tail = f"\r\n--{BOUNDARY}--\r\n".encode()
        self.data_bytes = total_bytes - len(self.head) - 44 - len(self.tail)
        # 48 kHz stereo 16-bit: 1.9 GB is 2.7 hours, under LECTURE_MAX_SECONDS.
        self.wav_head = (
            b"RIFF" + struct.pack("<I", 36 + self.data_bytes) + b"WAVEfmt "
            + struct.pack("<IHHIIHH", 16, 1, 2, 48_000, 48_000 * 4, 4, 16)
            + b"data" + struct.pack("<I", self.data_bytes)
        )  # fmt: skip

    def __len__(self) -> int:
        return len(self.head) + len(self.wav_head) + self.data_bytes + len(self.tail)

    def __iter__(self) -> Iterator[bytes]:
        yield self.head + self.wav_head
        block = bytes(1 << 20)
        left = self.data_bytes
        while left:
            piece = block[: min(left, len(block))]
            yield piece
            left -= len(piece)
        yield self.tail


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def login(url: str, username: str):
    """A signed-in session that may POST (CSRF token and Referer set)."""
    import requests

    http = requests.Session()
    http.cookies.update(sign_in(url, username))
    http.headers.update({"X-CSRFToken": http.cookies["csrftoken"], "Referer": url + "/"})
    return http


class Pages:
    """--clients people loading pages one after another until stopped."""

    def __init__(self, url: str, sessions: list) -> None:
        self.url = url
        self.sessions = sessions
        self.latency: list[tuple[float, float]] = []  # (start, seconds)
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._loop, args=(i, http), daemon=True)
            for i, http in enumerate(sessions)
        ]

    def _loop(self, index: int, http) -> None:
        n = index
        while not self.stop.is_set():
            path = PAGES[n % len(PAGES)]
            n += 1
            began = time.perf_counter()
            try:
                answer = http.get(self.url + path, timeout=60)
                ok = answer.status_code == 200
                what = f"{path}: {answer.status_code}"
            except Exception as exc:  # noqa: BLE001 - every failure is a result
                ok, what = False, f"{path}: {type(exc).__name__}"
            took = time.perf_counter() - began
            with self.lock:
                self.latency.append((began, took))
                if not ok:
                    self.errors.append(what)
            time.sleep(0.05)  # a person reads for a moment; 20 people, about 20 pages/s

    def between(self, start: float, end: float) -> list[float]:
        with self.lock:
            return [took for began, took in self.latency if start <= began <= end]


def refused_upload(url: str, total_bytes: int, cookies: str, csrf: str) -> dict:
    """Declare `total_bytes` and send them as a browser does (sending and reading at
    once); the time from the first byte to the answer's status line."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    head = (
        f"POST /api/lectures/ HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {total_bytes}\r\nCookie: {cookies}\r\nX-CSRFToken: {csrf}\r\n"
        f"Referer: {url}/\r\n\r\n"
    ).encode()
    sent = {"bytes": 0, "error": ""}

    def send_body() -> None:
        block = bytes(1 << 20)
        try:
            while sent["bytes"] < total_bytes:
                sock.sendall(block)
                sent["bytes"] += len(block)
        except OSError as exc:
            sent["error"] = type(exc).__name__

    began = time.perf_counter()
    sock.sendall(head)
    sender = threading.Thread(target=send_body, daemon=True)
    sender.start()
    data = b""
    answered = None
    while b"\r\n\r\n" not in data:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        if answered is None:
            answered = time.perf_counter() - began
        data += chunk
    head_part, _, body = data.partition(b"\r\n\r\n")
    try:  # the rest of a short JSON body, if it came in a later packet
        while len(body) < 200 and (more := sock.recv(65536)):
            body += more
    except OSError:
        pass
    sock.close()
    sender.join(timeout=30)
    status = int(head_part.split()[1]) if head_part.startswith(b"HTTP/1.1 ") else 0
    try:
        detail = json.loads(body).get("detail", "")
    except ValueError:
        detail = body[:200].decode(errors="replace")
    return {
        "status": status,
        "seconds": answered if answered is not None else float("nan"),
        "sent": sent["bytes"],
        "send_error": sent["error"],
        "detail": detail,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--accepted", type=float, default=1.9e9, help="bytes, accepted")
    parser.add_argument("--refused", type=float, default=2.3e9, help="bytes, refused")
    parser.add_argument("--refuse-after", type=float, default=5.0, help="seconds into it")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="sersite-upload-"))
    server = None
    try:
        env = prepare(tmp, args.clients + 1, None)
        env["SERSITE_TESTING"] = "0"  # the settings `make run` uses
        (tmp / "tmp").mkdir()
        env["TMPDIR"] = str(tmp / "tmp")  # the spooled body and the upload's temp file
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = start(
            [sys.executable, "-m", "sersite.server", "--host", "127.0.0.1", "--port", str(port)],
            env,
            tmp / "web.log",
        )
        wait_until_up(url, server)
        from django.conf import settings

        print(f"server pid {server.pid}, MAX_UPLOAD_BYTES {settings.MAX_UPLOAD_BYTES:,}")
        uploader = login(url, "load0")
        sessions = [login(url, f"load{i}") for i in range(1, args.clients + 1)]
        for http in sessions:  # every page once: code loaded before measuring
            for path in PAGES:
                http.get(url + path, timeout=60).raise_for_status()
        rss_idle = peak_rss(server.pid)

        pages = Pages(url, sessions)
        for thread in pages.threads:
            thread.start()
        time.sleep(2)
        body = WavUpload(int(args.accepted))
        result: dict = {}

        def accept() -> None:
            began = time.perf_counter()
            answer = uploader.post(
                url + "/api/lectures/",
                data=body,
                headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
                timeout=3600,
            )
            result.update(status=answer.status_code, seconds=time.perf_counter() - began)
            result["json"] = answer.json() if answer.status_code < 500 else answer.text[:300]

        window_start = time.perf_counter()
        accepting = threading.Thread(target=accept)
        accepting.start()
        time.sleep(args.refuse_after)
        cookies = "; ".join(f"{k}={v}" for k, v in uploader.cookies.items())
        refusal = refused_upload(url, int(args.refused), cookies, uploader.cookies["csrftoken"])
        accepting.join()
        window_end = time.perf_counter()
        pages.stop.set()
        for thread in pages.threads:
            thread.join(timeout=70)

        during = pages.between(window_start, window_end)
        p95 = percentile(during, 0.95)
        rss_peak = peak_rss(server.pid)
        leftovers = sorted(p.name for p in (tmp / "tmp").iterdir())
        stored = result.get("json", {}).get("size_bytes") if result.get("status") == 201 else None

        print(f"load: {os.getloadavg()[0]:.2f} (1-min average), {os.cpu_count()} CPUs")
        print(
            f"accepted upload: {len(body):,} bytes -> {result.get('status')} in "
            f"{result.get('seconds', float('nan')):.1f} s "
            f"({len(body) / 1e6 / result.get('seconds', float('nan')):.0f} MB/s), "
            f"stored {stored}"
        )
        print(
            f"refused upload: {int(args.refused):,} bytes declared -> {refusal['status']} "
            f"after {refusal['seconds'] * 1000:.0f} ms; the client stopped sending after "
            f"{refusal['sent']:,} bytes ({refusal['send_error']}); "
            f"“{refusal['detail']}”"
        )
        print(
            f"pages during the uploads: {len(during)} loads by {args.clients} clients, "
            f"p50 {percentile(during, 0.5) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
            f"max {max(during, default=float('nan')) * 1000:.0f} ms, "
            f"{len(pages.errors)} errors {sorted(set(pages.errors))[:5]}"
        )
        idle = f"idle, pages warm: {rss_idle / 1e6:.0f} MB"
        print(f"server peak RSS {rss_peak / 1e6:.0f} MB ({idle})")
        print(f"temporary files left by the server: {len(leftovers)} {leftovers[:5]}")
        print(f"peak_rss_mb: {rss_peak / 1e6:.0f}")
        print(f"ratio[peak_rss/400MB]: {rss_peak / PEAK_RSS_TARGET:.3f}")
        print(f"refusal_s: {refusal['seconds']:.3f}")
        print(f"ratio[refusal/1s]: {refusal['seconds'] / REFUSAL_TARGET_S:.3f}")
        print(f"page_p95_s: {p95:.3f}")
        print(f"ratio[page_p95/1s]: {p95 / PAGE_P95_TARGET_S:.3f}")
        print(f"accepted_status: {result.get('status')}")
        print(f"refused_status: {refusal['status']}")
        print(f"page_errors: {len(pages.errors)}")
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=20)
            except Exception:  # noqa: BLE001 - a server that will not stop is killed
                server.kill()
        cleanup_redis()  # the queued analysis job: no worker runs here
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def wait_until_up(url: str, server) -> None:
    import requests

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}")
        try:
            requests.get(url + "/accounts/login/", timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.3)
    raise RuntimeError("the server did not answer within 90 s")


if __name__ == "__main__":
    main()
