"""Load on a live site: --uploaders uploading at once while --watchers WebSockets listen.

Starts its own site on loopback: the web server and one Celery worker, against a scratch SQLite
database (or --database-url: give a scratch one, the bench writes users and lectures into
it), a scratch media folder and a Redis key prefix of its own, with --users users and a
tiny untrained model (MobileNetV3-small, as the tests' emotion_model). Then:

1. --watchers WebSocket clients (asyncio, `websockets`) connect to ws/jobs/, spread over
   the users, and stay connected;
2. --uploaders threads start together; each opens the lectures page, uploads one 2 s WAV
   (POST /api/lectures/), polls its job through the API until it ends and opens the
   lecture's page.

Reports errors (target 0: any unexpected status, exception, refused or dropped socket,
job not succeeded), p50/p95/max latency of pages, API reads and uploads, WebSocket connect
time, whether every upload made exactly one lecture, and whether every watcher saw every
job of its user end. Everything is bounded by --timeout seconds.

    .venv/bin/python bench/load.py [--uploaders 50] [--watchers 200] [--users 5]

Prints human-readable lines, then `key: value` lines; `ratio[...]` is each p95 over its
budget (PAGE_P95_BUDGET_S, API_P95_BUDGET_S; at most 1 is within budget).
"""

import argparse
import asyncio
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# What a person clicking through the site should not notice, on the 2-core machine.
PAGE_P95_BUDGET_S = 2.0
API_P95_BUDGET_S = 1.0
PASSWORD = "load-bench-password-1"
LABELS = ["anger", "happy", "neutral", "sad"]
TERMINAL = {"succeeded", "failed", "cancelled"}


class Record:
    """Latencies and errors, from many threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: list[str] = []

    def time(self, kind: str, seconds: float) -> None:
        with self.lock:
            self.latency[kind].append(seconds)

    def error(self, text: str) -> None:
        with self.lock:
            self.errors.append(text)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def speech_wav(seconds: float = 2.0, sr: int = 16_000) -> bytes:
    import numpy as np
    import soundfile as sf

    t = np.arange(int(seconds * sr)) / sr
    tone = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 6))
    out = io.BytesIO()
    sf.write(out, 0.2 * tone * 0.5 * (1 + np.sin(2 * np.pi * 4 * t)), sr, format="WAV")
    return out.getvalue()


# ---------------------------------------------------------------- the site


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare(tmp: Path, users: int, database_url: str | None) -> dict:
    """Environment of the site, migrated, with users and an active tiny model."""
    env = dict(os.environ)
    env.update(
        SERSITE_VAR_DIR=str(tmp),
        MEDIA_ROOT=str(tmp / "media"),
        DATABASE_URL=database_url or f"sqlite:///{tmp / 'load.sqlite3'}",
        REDIS_KEY_PREFIX=f"sersite-load-{os.getpid()}",
        DJANGO_SETTINGS_MODULE="sersite.settings",
        SERSITE_TESTING="1",  # static files from the source folders, no collectstatic
        DEBUG="0",
        OMP_NUM_THREADS="1",
        PYTHONUNBUFFERED="1",
    )
    os.environ.update(env)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.files import File
    from django.core.management import call_command

    from emotions.models import EmotionModel
    from emotions.ser import networks

    call_command("migrate", verbosity=0)
    model_user = get_user_model()
    people = [model_user.objects.create_user(f"load{i}", password=PASSWORD) for i in range(users)]
    net = networks.build_network("mobilenet_v3_small", len(LABELS), pretrained=False, seed=1)
    networks.save_checkpoint(net, tmp / "tiny.pt", {"labels": LABELS})
    model = EmotionModel(
        owner=people[0], name="load bench model", backbone="mobilenet_v3_small",
        labels=LABELS, is_active=True, provenance="untrained (load bench)",
    )  # fmt: skip
    with open(tmp / "tiny.pt", "rb") as fh:
        model.weights.save("tiny.pt", File(fh), save=True)
    return env


def start(cmd: list[str], env: dict, log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def wait_until_up(url: str, server: subprocess.Popen, worker: subprocess.Popen) -> None:
    import requests

    from sersite.celery import app

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        for proc in (server, worker):
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args[2]} exited with {proc.returncode}")
        try:
            requests.get(url + "/accounts/login/", timeout=1)
            if app.control.ping(timeout=0.5):
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise RuntimeError("the site did not come up within 90 s (see the logs)")


def sign_in(url: str, username: str):
    import requests

    session = requests.Session()
    session.get(url + "/accounts/login/", timeout=30)
    answer = session.post(
        url + "/accounts/login/",
        data={"username": username, "password": PASSWORD},
        headers={"X-CSRFToken": session.cookies["csrftoken"], "Referer": url + "/"},
        allow_redirects=False,
        timeout=30,
    )
    if answer.status_code != 302:
        raise RuntimeError(f"login of {username} failed: {answer.status_code}")
    return session.cookies.get_dict()


# ---------------------------------------------------------------- clients


def uploader(i: int, url: str, cookies: dict, wav: bytes, record: Record, deadline: float):
    """One teacher: the lectures page, an upload, the job polled to its end, the report."""
    import requests

    http = requests.Session()
    http.cookies.update(cookies)
    http.headers.update({"X-CSRFToken": cookies["csrftoken"], "Referer": url + "/"})

    def timed(kind: str, method: str, path: str, expect: int, **kwargs):
        t0 = time.perf_counter()
        try:
            answer = http.request(method, url + path, timeout=60, **kwargs)
        except requests.RequestException as exc:
            record.error(f"uploader {i} {method} {path}: {type(exc).__name__}")
            return None
        record.time(kind, time.perf_counter() - t0)
        if answer.status_code != expect:
            record.error(f"uploader {i} {method} {path}: {answer.status_code}")
            return None
        return answer

    timed("page", "GET", "/lectures/", 200)
    files = {"file": (f"talk-{i}.wav", wav, "audio/wav")}
    answer = timed(
        "upload", "POST", "/api/lectures/", 201, files=files, data={"title": f"load-{i}"}
    )
    if answer is None:
        return None
    lecture = answer.json()
    job = lecture["job"]
    while job["state"] not in TERMINAL and time.monotonic() < deadline:
        time.sleep(0.5)
        polled = timed("api", "GET", f"/api/jobs/{job['id']}/", 200)
        job = polled.json() if polled is not None else job
    if job["state"] != "succeeded":
        record.error(f"uploader {i}: job {job['id']} {job['state']} {job.get('error', '')}")
    timed("page", "GET", f"/lectures/{lecture['id']}/", 200)
    return job["id"]


async def watcher(
    i: int, url: str, cookies: dict, record: Record, seen: set, connected, stop
) -> None:
    """One open page: connected to ws/jobs/ until told to stop, noting every job that ends."""
    from websockets.asyncio.client import connect

    headers = {"Origin": url, "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}
    t0 = time.perf_counter()
    try:
        async with connect(
            "ws" + url.removeprefix("http") + "/ws/jobs/",
            additional_headers=headers,
            open_timeout=60,
            ping_interval=None,
        ) as ws:
            record.time("ws_connect", time.perf_counter() - t0)
            connected.release()
            while not stop.is_set():
                try:
                    raw = await asyncio.wait_for(ws.recv(), timeout=0.5)
                except TimeoutError:
                    continue
                message = json.loads(raw)
                if message.get("job", {}).get("state") in TERMINAL:
                    seen.add(message["job"]["id"])
    except Exception as exc:  # refused, dropped: each one is an error of the run
        record.error(f"watcher {i}: {type(exc).__name__}: {exc}")
        connected.release()


# ---------------------------------------------------------------- the run


async def run(args, url: str, cookies: list[dict], wav: bytes, record: Record) -> dict:
    deadline = time.monotonic() + args.timeout
    stop = asyncio.Event()
    connected = asyncio.Semaphore(0)
    seen = [set() for _ in range(args.watchers)]
    owner_of = [i % len(cookies) for i in range(args.watchers)]
    tasks = [
        asyncio.create_task(watcher(i, url, cookies[owner_of[i]], record, seen[i], connected, stop))
        for i in range(args.watchers)
    ]
    for _ in range(args.watchers):
        await asyncio.wait_for(connected.acquire(), timeout=max(deadline - time.monotonic(), 1))
    print(f"{args.watchers} watchers connected; {args.uploaders} uploads start together")

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.uploaders) as pool:
        futures = [
            asyncio.wrap_future(
                pool.submit(uploader, i, url, cookies[i % len(cookies)], wav, record, deadline)
            )
            for i in range(args.uploaders)
        ]
        job_ids = await asyncio.gather(*futures)
    elapsed = time.perf_counter() - t0
    # The last "succeeded" events are on their way to the watchers: give them a moment.
    jobs_of = defaultdict(set)
    for i, job_id in enumerate(job_ids):
        if job_id is not None:
            jobs_of[i % len(cookies)].add(job_id)
    settle = min(deadline, time.monotonic() + 10)
    while time.monotonic() < settle:
        if all(jobs_of[owner_of[w]] <= seen[w] for w in range(args.watchers)):
            break
        await asyncio.sleep(0.2)
    stop.set()
    await asyncio.gather(*tasks)
    missed = sum(not jobs_of[owner_of[w]] <= seen[w] for w in range(args.watchers))
    leaked = sum(
        bool(seen[w] - jobs_of[owner_of[w]]) for w in range(args.watchers)
    )  # events of another user's jobs: must never happen
    return {"elapsed": elapsed, "job_ids": job_ids, "missed": missed, "leaked": leaked}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--uploaders", type=int, default=50)
    parser.add_argument("--watchers", type=int, default=200)
    parser.add_argument("--users", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=300.0, help="bound on the whole run")
    parser.add_argument("--database-url", help="a scratch database (default: SQLite)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder and logs")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="sersite-load-"))
    procs: list[subprocess.Popen] = []
    try:
        t0 = time.perf_counter()
        env = prepare(tmp, args.users, args.database_url)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        procs.append(
            start(
                [
                    sys.executable,
                    "-m",
                    "sersite.server",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ],
                env,
                tmp / "web.log",
            )  # fmt: skip
        )
        procs.append(
            start(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "sersite",
                    "worker",
                    "-Q",
                    "cpu,gpu",
                    "-c",
                    "1",
                    "-n",
                    f"load-{os.getpid()}@%h",
                    "--without-gossip",
                    "--without-mingle",
                    "-l",
                    "warning",
                ],
                env,
                tmp / "worker.log",
            )  # fmt: skip
        )
        wait_until_up(url, *procs)
        cookies = [sign_in(url, f"load{i}") for i in range(args.users)]
        print(f"site up on {url} in {time.perf_counter() - t0:.1f} s ({os.cpu_count()} CPUs)")

        record = Record()
        outcome = asyncio.run(run(args, url, cookies, speech_wav(), record))
        report(args, record, outcome)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        cleanup_redis()
        if args.keep:
            print(f"kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def report(args, record: Record, outcome: dict) -> None:
    from django.db.models import Count

    from emotions.models import Job, Lecture

    titles = Counter(
        dict(Lecture.objects.values_list("title").annotate(n=Count("id")).values_list("title", "n"))
    )
    expected = {f"load-{i}" for i in range(args.uploaders)}
    lectures_ok = set(titles) == expected and all(n == 1 for n in titles.values())
    if not lectures_ok:
        record.error(f"lectures per upload: {dict(titles)}")
    states = Counter(Job.objects.values_list("state", flat=True))
    if outcome["missed"]:
        record.error(f"{outcome['missed']} watcher(s) missed the end of a job of their user")
    if outcome["leaked"]:
        record.error(f"{outcome['leaked']} watcher(s) saw another user's job")

    lat = record.latency
    print(f"uploads: {args.uploaders} in {outcome['elapsed']:.1f} s; jobs {dict(states)}")
    print(f"lectures: {sum(titles.values())}, one per upload: {lectures_ok}")
    for kind in ("page", "api", "upload", "ws_connect"):
        values = lat.get(kind, [])
        print(
            f"{kind:10s} n={len(values):4d}  p50 {percentile(values, 0.5):6.3f} s  "
            f"p95 {percentile(values, 0.95):6.3f} s  max {max(values, default=float('nan')):6.3f} s"
        )
    for text in record.errors[:20]:
        print(f"error: {text}")
    page_p95, api_p95 = percentile(lat["page"], 0.95), percentile(lat["api"], 0.95)
    print(f"uploaders: {args.uploaders}")
    print(f"watchers: {args.watchers}")
    print(f"errors: {len(record.errors)}")
    print(f"one_lecture_per_upload: {lectures_ok}")
    print(f"watchers_missing_events: {outcome['missed']}")
    print(f"page_p95_s: {page_p95:.3f}")
    print(f"api_p95_s: {api_p95:.3f}")
    print(f"upload_p95_s: {percentile(lat['upload'], 0.95):.3f}")
    print(f"ws_connect_p95_s: {percentile(lat['ws_connect'], 0.95):.3f}")
    print(f"uploads_per_s: {args.uploaders / outcome['elapsed']:.2f}")
    print(f"ratio[errors]: {len(record.errors)} (target 0)")
    print(f"ratio[page_p95]: {page_p95 / PAGE_P95_BUDGET_S:.2f} (of {PAGE_P95_BUDGET_S} s)")
    print(f"ratio[api_p95]: {api_p95 / API_P95_BUDGET_S:.2f} (of {API_P95_BUDGET_S} s)")


def cleanup_redis() -> None:
    """The run's keys (the worker registry's lives a week otherwise)."""
    try:
        import redis
        from django.conf import settings

        client = redis.Redis.from_url(settings.REDIS_URL)
        for key in client.scan_iter(f"{settings.REDIS_KEY_PREFIX}:*"):
            client.delete(key)
    except Exception as exc:  # no Django set up, or Redis gone: nothing to clean
        print(f"(redis keys not cleaned: {exc})")


if __name__ == "__main__":
    main()
