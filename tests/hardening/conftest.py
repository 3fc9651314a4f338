"""A private live site for the hardening tests, and the tally of bad inputs handled.

The site (web server + one Celery worker) runs against the test database like the shared
`live_url`/`celery_worker` fixtures, but with a Redis key prefix, a media folder and a
temporary folder (TMPDIR) of its own: a test can then prove that nothing was left in the
temporary folder and nothing escaped the media folder, and it can point the site at a
Redis server of its own.
"""

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import RUN_PREFIX, _start, _stop, start_server

# Bad inputs tried and handled over the whole run (printed at the end).
TALLY = {"tried": 0, "handled": 0}


def pytest_terminal_summary(terminalreporter):
    if TALLY["tried"]:
        terminalreporter.write_line(
            f"bad input: {TALLY['tried']} tried, {TALLY['handled']} handled"
        )


@dataclass
class Site:
    url: str
    media: Path
    tmp: Path
    env: dict
    worker: object
    server: object


def _wait_for_line(proc, log: Path, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(log.read_text(errors="replace")[-3000:])
        if log.exists() and text in log.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{log.name}: no “{text}” within {timeout:.0f} s")


def start_worker_process(env: dict, log: Path, name: str):
    """A Celery worker for both queues; ready once its log says so (a ping through this
    process's broker would not reach it when its key prefix differs)."""
    cmd = [sys.executable, "-m", "celery", "-A", "sersite", "worker", "-Q", "cpu,gpu", "-c", "1"]
    cmd += ["-n", f"{name}-{os.getpid()}@%h", "-l", "info", "--without-gossip"]
    cmd.append("--without-mingle")
    proc = _start(cmd, env, log)
    _wait_for_line(proc, log, " ready.", 90)
    return proc


@contextmanager
def private_site(live_env: dict, logs_dir: Path, name: str, **env_overrides) -> Iterator[Site]:
    root = Path(tempfile.mkdtemp(prefix=f"{RUN_PREFIX}-{name}-"))
    media, tmp = root / "media", root / "tmp"
    media.mkdir()
    tmp.mkdir()
    env = {
        **live_env,
        "REDIS_KEY_PREFIX": f"{RUN_PREFIX}-{name}",
        "MEDIA_ROOT": str(media),
        "TMPDIR": str(tmp),
        **env_overrides,
    }
    worker = start_worker_process(env, logs_dir / f"worker-{name}.log", name)
    try:
        server, url = start_server(env, logs_dir / f"web-{name}.log")
    except Exception:
        _stop(worker)
        raise
    try:
        yield Site(url=url, media=media, tmp=tmp, env=env, worker=worker, server=server)
    finally:
        _stop(server)
        _stop(worker)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="package")
def site(live_env, logs_dir) -> Iterator[Site]:
    """One private site for the bad-input and authorization tests."""
    # Dozens of uploads from one user, each checked for how its input is handled: the
    # per-user job limit (tested in test_job_limits.py) would refuse most of them first.
    with private_site(live_env, logs_dir, "hardening", JOBS_PER_USER_MAX="0") as running:
        yield running


@pytest.fixture
def site_media(settings, site) -> Site:
    """This process writes files (a model's weights, fixtures' recordings) where the private
    site reads them."""
    settings.MEDIA_ROOT = site.media
    return site
