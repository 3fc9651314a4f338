"""Production settings pass Django's deployment checks."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _check_deploy(tmp_path, **extra):
    drop = ("DATABASE_", "SECRET_", "DJANGO_ALLOW_ASYNC_UNSAFE")  # the browser tests set the last
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(SERSITE_VAR_DIR=str(tmp_path), DEBUG="0", **extra)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip


def test_production_settings_are_clean(tmp_path):
    done = _check_deploy(tmp_path, PRODUCTION="1", ALLOWED_HOSTS="ser.example.org")
    assert done.returncode == 0, done.stdout + done.stderr


def test_check_flags_insecure_cookies_without_production(tmp_path):
    done = _check_deploy(tmp_path)
    assert done.returncode != 0
    assert "SESSION_COOKIE_SECURE" in done.stdout + done.stderr
