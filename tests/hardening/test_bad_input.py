"""Bad input through the real upload endpoints of a live site with a real worker.

Every case is built here and sent over HTTP to POST /api/lectures/, /api/noise/ or
/api/datasets/. It must end in a 4xx answer with a message, or in a job that ends `failed`
with a reason a person can read; unusual but real audio (8 channels, 192 kHz, NaN samples,
clipping, an hour of silence, odd file names) must give a correct result instead. Never a
5xx, never a job left running, nothing left in the site's temporary folder, no file
outside the media folder or not owned by a row, and the next valid upload still works.

What a teacher gets for the edge cases (see emotions/services/lectures.py):
- a recording shorter than half a second: the analysis fails, saying it is too short;
- pure digital silence: the analysis succeeds, every second flagged silent, and the job
  says that no speech was found (a muted microphone shows as such, not as an error);
- a WAV whose header claims more than the file holds (a recorder that crashed): what is
  there is analysed, and the duration is the real one.
"""

import math
import os
import re
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from emotions.models import (
    Dataset,
    DerivedBlocks,
    EmotionModel,
    Lecture,
    NoiseProfile,
    Utterance,
)
from tests.conftest import ROOT, login
from tests.hardening import inputs as make
from tests.hardening.conftest import TALLY
from tests.hardening.inputs import MARKER

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

JOBS_DEADLINE_S = 150
TERMINAL = {"succeeded", "failed", "cancelled"}
# A message that is a raw Python exception ("KeyError: 'x'", a traceback) is not a reason
# a person can act on: jobs.run writes those only for errors nobody anticipated.
RAW_EXCEPTION = re.compile(r"Traceback|^\s*[A-Za-z_.]*(Error|Exception)\b\s*:")
SAFE_STORED_NAME = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")
# Caches libraries keep in TMPDIR for the life of the machine (torch makes one on import).
# Files the tools themselves keep in the temporary folder, whatever the input: torch's and
# matplotlib's caches, and the one 51-byte session-id file ONNX Runtime writes (".ses").
TOOL_CACHES = ("torchinductor_", "matplotlib-", ".ses")


@pytest.fixture
def model(site_media, emotion_model):
    return emotion_model


@dataclass(frozen=True)
class Case:
    id: str
    filename: str
    build: Callable[[], bytes]
    expect: str  # "refused" (4xx), "failed" (a job that fails) or "succeeded"
    words: str = ""  # part of the refusal or failure message
    check: Callable[[dict], None] | None = None  # more checks on the result


# ---------------------------------------------------------------- HTTP


def multipart(filename: str, content: bytes, **fields: str) -> tuple[bytes, str]:
    """A multipart body written by hand, so a file name reaches the server byte for byte
    (requests would percent-encode a NUL and other control characters)."""
    boundary = f"----{MARKER}{uuid.uuid4().hex}"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    quoted = filename.replace("\\", "\\\\").replace('"', '\\"')
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{quoted}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    )
    parts.append(head.encode("utf-8") + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def upload(http: requests.Session, url: str, case: Case, **fields) -> requests.Response:
    body, content_type = multipart(case.filename, case.build(), **fields)
    return http.post(url, data=body, headers={"Content-Type": content_type}, timeout=60)


def message_of(answer: requests.Response) -> str:
    """The refusal's text: DRF's {"detail": ...} or its per-field lists."""
    try:
        body = answer.json()
    except ValueError:
        return ""
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])
    if isinstance(body, dict):
        return " ".join(str(m) for v in body.values() for m in (v if isinstance(v, list) else [v]))
    return str(body)


def wait_for_jobs(http: requests.Session, url: str, job_ids: list[int]) -> dict[int, dict]:
    """Each job's last state; those still running at the deadline are returned as they are
    (and judged hung)."""
    deadline = time.monotonic() + JOBS_DEADLINE_S
    last: dict[int, dict] = {}
    pending = set(job_ids)
    while pending and time.monotonic() < deadline:
        for job_id in sorted(pending):
            last[job_id] = http.get(f"{url}/api/jobs/{job_id}/", timeout=10).json()
            if last[job_id]["state"] in TERMINAL:
                pending.discard(job_id)
        if pending:
            time.sleep(0.5)
    return last


# ---------------------------------------------------------------- judging


@dataclass
class Outcome:
    case: Case
    what: str  # what happened, as printed
    problem: str | None = None  # why it is not handled (None: handled)


def refused(case: Case, answer: requests.Response) -> Outcome:
    text = message_of(answer)
    what = f"{answer.status_code} {text[:150]}"
    if answer.status_code >= 500:
        return Outcome(case, what, f"server error: {answer.text[:200]}")
    if case.expect != "refused":
        return Outcome(case, what, f"refused, expected {case.expect}")
    if not text or case.words not in text:
        return Outcome(case, what, f"no message with “{case.words}”: {answer.text[:200]}")
    return Outcome(case, what)


def finished(case: Case, job: dict, result: Callable[[], dict]) -> Outcome:
    what = f"job {job['state']}: {(job['error'] or job['message'])[:150]}"
    if job["state"] not in TERMINAL:
        return Outcome(case, what, f"job {job['id']} hung")
    if job["state"] != case.expect:
        return Outcome(case, what, f"expected {case.expect}")
    if job["state"] == "failed":
        reason = job["error"]
        if not reason or RAW_EXCEPTION.search(reason) or case.words not in reason:
            return Outcome(case, what, f"no readable reason with “{case.words}”")
    return checked(case, what, result)


def checked(case: Case, what: str, result: Callable[[], dict]) -> Outcome:
    if case.check is not None:
        try:
            case.check(result())
        except AssertionError as exc:
            return Outcome(case, what, f"check failed: {exc}")
    return Outcome(case, what)


def try_all(
    http: requests.Session,
    url: str,
    cases: list[Case],
    fields: dict,
    job_of: Callable[[dict], int] | None,
    result_of: Callable[[dict, dict], dict],
) -> list[Outcome]:
    """Upload every case, then wait for the jobs they started (`job_of` finds a job in an
    answer; None: the endpoint answers at once) and judge each."""
    outcomes, accepted = [], []
    for case in cases:
        answer = upload(http, url, case, **fields)
        if answer.status_code != 201:
            outcomes.append(refused(case, answer))
        elif case.expect == "refused":
            outcomes.append(Outcome(case, "201", "accepted, expected a refusal"))
        elif job_of is None:
            body = answer.json()
            outcomes.append(checked(case, "201", lambda body=body: result_of(body, {})))
        else:
            accepted.append((case, answer.json()))
    if job_of is not None:
        jobs = wait_for_jobs(http, url.split("/api/")[0], [job_of(body) for _, body in accepted])
        for case, body in accepted:
            job = jobs[job_of(body)]
            outcomes.append(finished(case, job, lambda b=body, j=job: result_of(b, j)))
    return outcomes


def judge(outcomes: list[Outcome], endpoint: str) -> None:
    """Print one line per case, add to the tally, and fail listing every unhandled case."""
    handled = sum(o.problem is None for o in outcomes)
    print(f"\n{endpoint}:")
    for o in outcomes:
        print(f"  {'ok ' if o.problem is None else 'BAD'} {o.case.id} -> {o.what}")
    print(f"{endpoint}: {len(outcomes)} tried, {handled} handled")
    TALLY["tried"] += len(outcomes)
    TALLY["handled"] += handled
    bad = [f"{o.case.id}: {o.problem} ({o.what})" for o in outcomes if o.problem]
    assert not bad, "\n".join(bad)


# ---------------------------------------------------------------- files


def files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")}


def names_with_marker(root: Path, depth: int) -> list[Path]:
    found = []
    for path, dirs, files in os.walk(root):
        level = len(Path(path).relative_to(root).parts)
        if level >= depth:
            dirs[:] = []
        found += [Path(path) / n for n in dirs + files if MARKER in n]
    return found


def stored_names() -> set[str]:
    names = set(Lecture.objects.values_list("audio", flat=True))
    names |= set(NoiseProfile.objects.values_list("audio", flat=True))
    names |= set(Utterance.objects.values_list("audio", flat=True))
    names |= set(EmotionModel.objects.values_list("weights", flat=True))
    names |= set(DerivedBlocks.objects.values_list("data", flat=True))
    return names


class FileAudit:
    """What is in the media and temporary folders before; what may be there after."""

    def __init__(self, site):
        self.site = site
        self.media_before = files_under(site.media)
        self.tmp_before = files_under(site.tmp)

    def problems(self) -> list[str]:
        site, problems = self.site, []
        left = {n for n in files_under(site.tmp) - self.tmp_before if not n.startswith(TOOL_CACHES)}
        if left:
            problems.append(f"left in the temporary folder: {sorted(left)[:10]}")
        new = {n for n in files_under(site.media) - self.media_before if (site.media / n).is_file()}
        for name in sorted(new):
            path = site.media / name
            if not SAFE_STORED_NAME.match(name) or ".." in name.split("/"):
                problems.append(f"unsafe stored name {name!r}")
            if path.is_symlink() or not path.resolve().is_relative_to(site.media.resolve()):
                problems.append(f"{name} leads outside the media folder")
        orphans = new - stored_names()
        if orphans:
            problems.append(f"files no row owns: {sorted(orphans)[:10]}")
        inside = site.media.resolve()
        for root, depth in ((Path(tempfile.gettempdir()), 3), (ROOT, 2)):
            for path in names_with_marker(root, depth):
                if not path.resolve().is_relative_to(inside):
                    problems.append(f"written outside the media folder: {path}")
        return problems


# ---------------------------------------------------------------- lectures


def _segments(result: dict) -> list[dict]:
    return result["segments"]


def duration_is(seconds: float, tolerance: float = 0.02):
    def check(result: dict) -> None:
        got = result["lecture"]["duration_s"]
        assert got == pytest.approx(seconds, abs=tolerance), f"duration {got}, not {seconds}"
        ends = [s["end_s"] for s in _segments(result)]
        assert ends and ends[-1] == pytest.approx(seconds, abs=tolerance), ends[-3:]

    return check


def all_finite(result: dict) -> None:
    speech = [s for s in _segments(result) if not s["is_silence"]]
    assert speech, "no segment was classified"
    for s in speech:
        assert math.isfinite(s["confidence"]), s
        assert all(math.isfinite(p) for p in s["probabilities"].values()), s
        assert sum(s["probabilities"].values()) == pytest.approx(1, abs=1e-3), s


def both(*checks):
    def check(result: dict) -> None:
        for one in checks:
            one(result)

    return check


def all_silent(result: dict) -> None:
    segments = _segments(result)
    assert len(segments) == 3600, len(segments)
    assert all(s["is_silence"] and s["label"] == "" for s in segments)
    assert result["lecture"]["summary"]["speech_s"] == 0
    assert "no speech" in result["job"]["message"].lower(), result["job"]["message"]


def stored_safely(result: dict) -> None:
    name = Lecture.objects.get(pk=result["lecture"]["id"]).audio.name
    assert name.startswith("lectures/") and SAFE_STORED_NAME.match(name), name
    assert len(result["lecture"]["original_name"]) <= 255


def never_served_as_a_page(result: dict) -> None:
    """Whatever an upload is named, the site never serves it back as HTML or script."""
    http, url = result["http"], result["url"]
    answer = http.get(f"{url}/lectures/{result['lecture']['id']}/audio", timeout=10)
    kind = answer.headers.get("Content-Type", "")
    assert answer.status_code == 200, answer.status_code
    assert not re.search(r"html|xml|script|svg", kind), f"served as {kind}"
    assert answer.headers.get("X-Content-Type-Options") == "nosniff"


def speech(check=None):
    return both(all_finite, duration_is(2.0), *(check and [check] or []))


# fmt: off
LECTURE_CASES = [
    Case("empty file", "talk.wav", lambda: b"", "refused", "is empty"),
    Case("no file name at all", "../", make.valid_wav, "refused", "No file was submitted"),
    Case("truncated WAV header", "talk.wav", make.truncated_header, "failed", "cannot be read"),
    Case("WAV header claims 60 s, file holds 1 s", "talk.wav", make.header_claims_more,
         "succeeded", check=both(all_finite, duration_is(1.0))),
    Case("random bytes named .wav", "talk.wav", make.random_bytes, "failed", "cannot be read"),
    Case("random bytes named .mp3", "talk.mp3", make.random_bytes, "failed", "cannot be read"),
    Case("random bytes named .m4a", "talk.m4a", make.random_bytes, "failed", "cannot be read"),
    Case("3 MB of random bytes (streamed to a temporary file)", "talk.wav",
         lambda: make.random_bytes(3_000_000), "failed", "cannot be read"),
    Case("HTML page named .wav", "talk.wav", make.html_page, "failed", "cannot be read"),
    Case("HTML page named .html", f"{MARKER}.html", make.html_page, "failed", "cannot be read",
         check=never_served_as_a_page),
    Case("8 channels at 48 kHz", "array.wav", make.many_channels, "succeeded", check=speech()),
    Case("192 kHz 24-bit stereo", "hires.wav", make.high_rate, "succeeded", check=speech()),
    Case("20 ms of sound", "blip.wav", make.twenty_ms, "failed", "too short"),
    Case("96 KB WAV whose header says 1 Hz", "slow.wav", make.header_says_rate, "refused",
         "sample rate is 1 Hz"),
    Case("7 hours declared (8 kHz FLAC silence)", "marathon.flac",
         lambda: make.silence_flac(7 * 3600), "refused", "the limit is 6 h 00 min"),
    Case("an hour of digital silence (8 kHz FLAC)", "muted.flac",
         lambda: make.silence_flac(3600), "succeeded",
         check=both(all_silent, duration_is(3600))),
    Case("float WAV with NaN and ±Inf samples", "nan.wav", make.nan_and_inf, "succeeded",
         check=both(all_finite, duration_is(3.0))),
    Case("clipped, 60 dB over full scale", "loud.wav", make.clipped, "succeeded",
         check=speech()),
    Case("video without an audio track", "clip.mp4", make.video_without_audio, "failed",
         "no audio stream"),
    Case("name climbing out with ../", f"../../../{MARKER}-escape.wav", make.valid_wav,
         "succeeded", check=speech(stored_safely)),
    Case("name with a NUL byte", f"{MARKER}\x00.sh.wav", make.valid_wav, "succeeded",
         check=speech(stored_safely)),
    Case("name of 400 characters", f"{MARKER}{'a' * 400}.wav", make.valid_wav, "succeeded",
         check=speech(stored_safely)),
    Case("non-ASCII name", f"Größe 講義 🎓 {MARKER}.wav", make.valid_wav, "succeeded",
         check=speech(stored_safely)),
    # Last in the worker's queue: everything before it left the worker able to work.
    Case("a valid recording after all of these", "fine.wav", make.valid_wav, "succeeded",
         check=speech()),
]
# fmt: on


def test_lecture_uploads(site, model, make_user):
    make_user("teacher")
    http = login(site.url, "teacher")
    audit = FileAudit(site)

    def result(lecture: dict, job: dict) -> dict:
        base = f"{site.url}/api/lectures/{lecture['id']}"
        return {
            "lecture": http.get(f"{base}/", timeout=10).json(),
            "segments": http.get(f"{base}/segments/?limit=5000", timeout=30).json()["results"],
            "job": job, "http": http, "url": site.url,
        }  # fmt: skip

    outcomes = try_all(
        http, f"{site.url}/api/lectures/", LECTURE_CASES, {"course": "Hardening 101"},
        job_of=lambda lecture: lecture["job"]["id"], result_of=result,
    )  # fmt: skip
    # A refused upload leaves no row (and, checked below, no file).
    assert Lecture.objects.count() == sum(c.expect != "refused" for c in LECTURE_CASES)
    judge(outcomes, "POST /api/lectures/")
    assert audit.problems() == []


# ---------------------------------------------------------------- noise recordings


def noise_levels(duration: float, rate: int | None = None):
    def check(result: dict) -> None:
        profile = result["profile"]
        assert profile["duration_s"] == pytest.approx(duration, abs=0.02), profile
        assert math.isfinite(profile["rms_dbfs"]) and profile["peak_dbfs"] <= 0.0, profile
        if rate:
            assert profile["original_sample_rate"] == rate, profile
        name = NoiseProfile.objects.get(pk=profile["id"]).audio.name
        assert name.startswith("noise/") and name.endswith(".flac"), name
        assert SAFE_STORED_NAME.match(name), name

    return check


# fmt: off
NOISE_CASES = [
    Case("empty file", "hum.wav", lambda: b"", "refused", "is empty"),
    Case("truncated WAV header", "hum.wav", make.truncated_header, "refused", "site can read"),
    Case("WAV header claims 60 s, file holds 1 s", "hum.wav", make.header_claims_more,
         "succeeded", check=noise_levels(1.0)),
    Case("random bytes named .wav", "hum.wav", make.random_bytes, "refused", "site can read"),
    Case("random bytes named .mp3", "hum.mp3", make.random_bytes, "refused", "site can read"),
    Case("random bytes named .m4a", "hum.m4a", make.random_bytes, "refused", "site can read"),
    Case("3 MB of random bytes (streamed to a temporary file)", "hum.wav",
         lambda: make.random_bytes(3_000_000), "refused", "site can read"),
    Case("HTML page named .wav", "hum.wav", make.html_page, "refused", "site can read"),
    Case("8 channels at 48 kHz", "array.wav", make.many_channels, "succeeded",
         check=noise_levels(2.0, 48_000)),
    Case("192 kHz 24-bit stereo", "hires.wav", make.high_rate, "succeeded",
         check=noise_levels(2.0, 192_000)),
    Case("20 ms of sound", "blip.wav", make.twenty_ms, "refused", "too short"),
    Case("10 s of digital silence", "muted.flac", lambda: make.silence_flac(10), "refused",
         "is silent"),
    Case("an hour of digital silence", "muted.flac", lambda: make.silence_flac(3600),
         "refused", "“muted.flac” lasts 60 minutes"),
    Case("float WAV with NaN and ±Inf samples", "nan.wav", make.nan_and_inf, "succeeded",
         check=noise_levels(3.0)),
    Case("clipped, 60 dB over full scale", "loud.wav", make.clipped, "succeeded",
         check=noise_levels(2.0)),
    Case("video without an audio track", "clip.mp4", make.video_without_audio, "refused",
         "no audio stream"),
    Case("name climbing out with ../", f"../../{MARKER}-escape.wav", make.valid_wav,
         "succeeded", check=noise_levels(2.0)),
    Case("name with a NUL byte", f"{MARKER}\x00.sh.wav", make.valid_wav, "succeeded",
         check=noise_levels(2.0)),
    Case("name of 400 characters", f"{MARKER}{'a' * 400}.wav", make.valid_wav, "succeeded",
         check=noise_levels(2.0)),
    Case("non-ASCII name", f"Größe 講義 🎓 {MARKER}.wav", make.valid_wav, "succeeded",
         check=noise_levels(2.0)),
    Case("a valid recording after all of these", "fine.wav", make.valid_wav, "succeeded",
         check=noise_levels(2.0)),
]
# fmt: on


def test_noise_uploads(site, make_user):
    make_user("researcher")
    http = login(site.url, "researcher")
    audit = FileAudit(site)
    outcomes = try_all(
        http, f"{site.url}/api/noise/", NOISE_CASES, {"environment": "classroom"},
        job_of=None, result_of=lambda profile, _: {"profile": profile},
    )  # fmt: skip
    assert NoiseProfile.objects.count() == sum(c.expect == "succeeded" for c in NOISE_CASES)
    judge(outcomes, "POST /api/noise/")
    assert audit.problems() == []


# ---------------------------------------------------------------- dataset archives


def imported(utterances: int):
    def check(result: dict) -> None:
        dataset = result["dataset"]
        assert dataset["n_utterances"] == utterances, dataset
        for name in Utterance.objects.values_list("audio", flat=True):
            assert name.startswith("datasets/") and SAFE_STORED_NAME.match(name), name

    return check


# fmt: off
ARCHIVE_CASES = [
    Case("empty file", "corpus.zip", lambda: b"", "refused", "is empty"),
    Case("no file name at all", "../", make.valid_wav, "refused", "Choose an archive"),
    Case("random bytes named .zip", "corpus.zip", make.random_bytes, "refused",
         "not a zip or tar archive"),
    Case("HTML page named .tar.gz", "corpus.tar.gz", make.html_page, "refused",
         "not a zip or tar archive"),
    Case("zip cut in half", "corpus.zip", lambda: make.zip_of(make.corpus())[:3000], "refused",
         "not a zip or tar archive"),
    Case("zip member climbing out with ../", "corpus.zip",
         lambda: make.zip_of({**make.corpus(), f"../../{MARKER}-evil.wav": make.valid_wav()}),
         "failed", "climbs out of its folder"),
    Case("tar member climbing out with ../", "corpus.tar.gz",
         lambda: make.tar_of({**make.corpus(), f"angry/../../{MARKER}-evil.wav": b"x"}),
         "failed", "climbs out of its folder"),
    Case("tar member with an absolute path", "corpus.tar.gz",
         lambda: make.tar_of({**make.corpus(), f"/tmp/{MARKER}-abs.wav": b"x"}),
         "failed", "absolute path"),
    Case("tar symlink to /etc/passwd", "corpus.tar.gz",
         lambda: make.tar_of(make.corpus(), [make.tar_member("angry/p.wav", b"2", "/etc/passwd")]),
         "failed", "is a link"),
    Case("tar hard link", "corpus.tar.gz",
         lambda: make.tar_of(make.corpus(), [make.tar_member("angry/h.wav", b"1", "/etc/hosts")]),
         "failed", "is a link"),
    Case("zip symlink", "corpus.zip",
         lambda: make.zip_of(make.corpus(), links={"angry/p.wav": "/etc/passwd"}),
         "failed", "is a link"),
    Case("tar device node", "corpus.tar.gz",
         lambda: make.tar_of(make.corpus(), [make.tar_member("angry/null.wav", b"3")]),
         "failed", "not a regular file"),
    Case("tar FIFO", "corpus.tar.gz",
         lambda: make.tar_of(make.corpus(), [make.tar_member("angry/fifo.wav", b"6")]),
         "failed", "not a regular file"),
    Case("zip bomb: 24 GB declared", "corpus.zip", lambda: make.zip_declaring(24 * 1024**3),
         "failed", "unpacks to more than"),
    Case("tar bomb: 25 GB declared", "corpus.tar", lambda: make.tar_declaring(25 * 1024**3),
         "failed", "unpacks to more than"),
    Case("zip member inflating past its declared size", "corpus.zip",
         make.zip_holding_more_than_declared, "failed", "damaged"),
    Case("password-protected zip", "corpus.zip", make.zip_encrypted, "failed",
         "password-protected"),
    Case("member name of 300 characters", "corpus.zip",
         lambda: make.zip_of({**make.corpus(), f"angry/{MARKER}{'n' * 300}.wav": b"x"}),
         "failed", "cannot be unpacked here: File name too long"),
    Case("corpus nested 9 folders of 60 characters deep", "corpus.zip",
         lambda: make.zip_of({**make.corpus(),
                              f"angry/{'/'.join(['d' * 60] * 9)}/deep.wav": make.valid_wav(1.0)}),
         "succeeded", check=imported(5)),
    Case("valid archive of garbage recordings", "corpus.zip",
         lambda: make.zip_of({"angry/a.wav": make.random_bytes(), "calm/b.wav": make.html_page(),
                              "calm/c.wav": make.truncated_header()}),
         "failed", "Nothing could be imported"),
    Case("archive name climbing out with ../", f"../../{MARKER}-corpus.zip",
         lambda: make.zip_of(make.corpus()), "succeeded", check=imported(4)),
    Case("a valid corpus after all of these", "corpus.tar.gz",
         lambda: make.tar_of(make.corpus()), "succeeded", check=imported(4)),
]
# fmt: on


def test_dataset_archives(site, make_user):
    make_user("researcher")
    http = login(site.url, "researcher")
    audit = FileAudit(site)

    def result(dataset: dict, job: dict) -> dict:
        return {"dataset": http.get(f"{site.url}/api/datasets/{dataset['id']}/", timeout=10).json()}

    outcomes = try_all(
        http, f"{site.url}/api/datasets/", ARCHIVE_CASES, {"visibility": "private"},
        job_of=lambda dataset: dataset["import_job"]["id"], result_of=result,
    )  # fmt: skip
    assert Dataset.objects.count() == sum(c.expect != "refused" for c in ARCHIVE_CASES)
    judge(outcomes, "POST /api/datasets/")
    # Only the valid imports hold utterances; every archive is gone once its job ended.
    assert not Utterance.objects.exclude(dataset__import_job__state="succeeded").exists()
    assert not [n for n in files_under(site.media) if n.startswith("imports/") and "." in n]
    assert audit.problems() == []


# ---------------------------------------------------------------- oversized uploads


def test_oversized_uploads_are_refused_with_413(make_user, settings):
    """Past MAX_UPLOAD_BYTES every upload endpoint answers 413 with the limit, whether the
    request declares its size (refused before the body is read) or only the file shows it.
    In this process (Django's own handler): see the next test for the site's server."""
    from rest_framework.test import APIClient

    settings.MAX_UPLOAD_BYTES = 1000
    client = APIClient()
    client.force_authenticate(make_user("uploader"))
    outcomes = []
    for endpoint in ("/api/lectures/", "/api/noise/", "/api/datasets/"):
        case = Case(f"{endpoint}: file over the limit", "big.wav", lambda: bytes(2000),
                    "refused", "the limit is")  # fmt: skip
        body, content_type = multipart(case.filename, case.build())
        outcomes.append(refused(case, client.generic("POST", endpoint, body, content_type)))
        case = Case(f"{endpoint}: Content-Length of 50 MB declared", "big.wav", bytes,
                    "refused", "the limit is")  # fmt: skip
        answer = client.generic(
            "POST", endpoint, body, content_type, CONTENT_LENGTH=str(50 * 1024 * 1024)
        )
        outcomes.append(refused(case, answer))
    assert all(o.what.startswith("413") for o in outcomes), [o.what for o in outcomes]
    assert not (Lecture.objects.exists() or NoiseProfile.objects.exists())
    assert not Dataset.objects.exists()
    judge(outcomes, "oversized uploads")


def test_the_server_refuses_a_declared_oversized_body_before_reading_it(site):
    """At the default limit, in front of Django (sersite.bodylimit); chunked bodies and
    memory: tests/hardening/test_upload_limits.py."""
    import socket

    host, port = site.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(
            b"POST /api/lectures/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: multipart/form-data; boundary=x\r\n"
            b"Content-Length: 3000000000\r\n\r\n" + bytes(1000)
        )
        sock.settimeout(3)
        try:
            head = sock.recv(200)
        except TimeoutError:
            head = b""
    assert head.startswith(b"HTTP/1.1 413"), head
