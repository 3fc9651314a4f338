"""Noise pack: extraction from real .deb files built here, and synthetic coloured noise."""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emotions.ser import noisepack
from emotions.ser.noisepack import (
    ENVIRONMENTS,
    NOISE_SOURCES,
    SYNTHETIC_SOURCES,
    NoisePackError,
    fetch,
    synthetic_noise,
)

needs_dpkg = pytest.mark.skipif(
    shutil.which("dpkg-deb") is None, reason="dpkg-deb is not installed: cannot build a test .deb"
)

AMBIENT = "usr/share/games/btanks/data/sounds/ambient"
COPYRIGHT = "Files: *\nCopyright: 2008 Test Authors\nLicense: GPL-2\n"


def ogg_bytes(seconds: float = 0.1, sr: int = 22_050) -> bytes:
    buffer = io.BytesIO()
    rng = np.random.default_rng(0)
    sf.write(buffer, 0.1 * rng.standard_normal(int(sr * seconds)), sr, format="OGG")
    return buffer.getvalue()


def build_deb(tmp_path: Path, package: str, files: dict[str, bytes], links=None) -> Path:
    """A real Debian package holding `files` (and `links`: name -> target)."""
    root = tmp_path / f"build-{package}"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {package}\nVersion: 1:1.0-1\nArchitecture: all\n"
        "Maintainer: Test <test@example.org>\nDescription: test data\n"
    )
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    for name, target in (links or {}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).symlink_to(target)
    out = tmp_path / "built.deb"
    subprocess.run(
        ["dpkg-deb", "-Zgzip", "--root-owner-group", "--build", str(root), str(out)],
        check=True,
        capture_output=True,
    )
    return out


class FakeApt:
    """Stands in for `apt-get download`: drops the prepared .deb where apt would."""

    def __init__(self, debs: dict[str, Path], returncode: int = 0, stderr: str = "") -> None:
        self.debs, self.returncode, self.stderr = debs, returncode, stderr
        self.calls: list[list[str]] = []

    def __call__(self, cmd, cwd=None, **kwargs):
        self.calls.append(list(cmd))
        assert cmd[:2] == ["apt-get", "download"]
        if self.returncode == 0:
            package = cmd[2]
            # apt writes an epoch's ':' as "%3a" in the file name.
            shutil.copy(self.debs[package], Path(cwd) / f"{package}_1%3a1.0-1_all.deb")
        return subprocess.CompletedProcess(cmd, self.returncode, "", self.stderr)


@pytest.fixture
def btanks_deb(tmp_path):
    files = {f"{AMBIENT}/{n}.ogg": ogg_bytes() for n in ("city", "country", "forest", "swamp")}
    files[f"{AMBIENT}/horror.ogg"] = ogg_bytes()  # in the package, not in the pack
    files["usr/share/doc/btanks-data/copyright"] = COPYRIGHT.encode()
    files["usr/share/doc/btanks-data/changelog.gz"] = b"not wanted"
    return build_deb(tmp_path, "btanks-data", files)


@needs_dpkg
def test_fetch_extracts_only_listed_files_with_attribution(tmp_path, btanks_deb):
    apt = FakeApt({"btanks-data": btanks_deb})
    dest = tmp_path / "noise"
    records = fetch(dest, packages=["btanks-data"], runner=apt)

    assert apt.calls == [["apt-get", "download", "btanks-data"]]
    assert [(r.name, r.environment) for r in records] == [
        ("street traffic", "street"),
        ("countryside", "countryside"),
        ("forest", "forest"),
        ("swamp", "swamp"),
    ]
    written = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert written == sorted(
        [f"btanks-data/{AMBIENT}/{n}.ogg" for n in ("city", "country", "forest", "swamp")]
        + ["btanks-data/usr/share/doc/btanks-data/copyright"]
    )
    city = records[0]
    assert city.path == dest / "btanks-data" / AMBIENT / "city.ogg"
    assert city.path_in_package == f"{AMBIENT}/city.ogg"
    assert city.package == "btanks-data" and city.package_version == "1:1.0-1"
    assert city.licence == "GPL-2 with artwork exception"
    assert city.attribution == COPYRIGHT
    assert city.sha256 == hashlib.sha256(city.path.read_bytes()).hexdigest()
    audio, sr = sf.read(city.path)
    assert sr == 22_050 and len(audio) > 0


@needs_dpkg
def test_kept_workdir_reuses_the_download(tmp_path, btanks_deb):
    apt = FakeApt({"btanks-data": btanks_deb})
    workdir = tmp_path / "debs"
    first = fetch(tmp_path / "a", workdir=workdir, packages=["btanks-data"], runner=apt)
    second = fetch(tmp_path / "b", workdir=workdir, packages=["btanks-data"], runner=apt)
    assert len(apt.calls) == 1
    assert [r.sha256 for r in first] == [r.sha256 for r in second]


@needs_dpkg
def test_wildcard_takes_only_matching_files_in_that_folder(tmp_path):
    crowd = "usr/share/games/etw/crowd"
    deb = build_deb(
        tmp_path,
        "etw-data",
        {
            f"{crowd}/crowd01.wav": b"RIFF0001" * 8,
            f"{crowd}/crowd02.wav": b"RIFF0002" * 8,
            f"{crowd}/README": b"no",
            f"{crowd}/sub/crowd03.wav": b"deeper, must not match",
            "usr/share/doc/etw-data/copyright": b"etw copyright",
        },
    )
    records = fetch(tmp_path / "out", packages=["etw-data"], runner=FakeApt({"etw-data": deb}))
    assert [(r.name, r.environment, r.path.name) for r in records] == [
        ("stadium crowd (crowd01)", "babble", "crowd01.wav"),
        ("stadium crowd (crowd02)", "babble", "crowd02.wav"),
    ]
    assert not (tmp_path / "out" / "etw-data" / crowd / "sub").exists()


@needs_dpkg
def test_missing_listed_file_is_an_error(tmp_path):
    deb = build_deb(tmp_path, "btanks-data", {f"{AMBIENT}/city.ogg": ogg_bytes()})
    with pytest.raises(NoisePackError, match="country.ogg"):
        fetch(tmp_path / "out", packages=["btanks-data"], runner=FakeApt({"btanks-data": deb}))


@needs_dpkg
def test_linked_doc_folder_is_noted_in_attribution(tmp_path):
    sound = "usr/share/games/tuxfootball/sound"
    deb = build_deb(
        tmp_path,
        "tuxfootball",
        {f"{sound}/crowdboo.wav": b"RIFFboo!" * 8, f"{sound}/crowdcheer.wav": b"RIFFyay!" * 8},
        links={"usr/share/doc/tuxfootball": "tuxfootball-common"},
    )
    records = fetch(
        tmp_path / "out", packages=["tuxfootball"], runner=FakeApt({"tuxfootball": deb})
    )
    assert len(records) == 2
    assert "links to tuxfootball-common" in records[0].attribution


@needs_dpkg
def test_unreadable_package_is_an_error(tmp_path):
    junk = tmp_path / "junk.deb"
    junk.write_bytes(b"this is not an ar archive")
    with pytest.raises(NoisePackError, match="cannot read"):
        fetch(tmp_path / "out", packages=["lmms-common"], runner=FakeApt({"lmms-common": junk}))


def test_failed_download_says_to_update_package_lists(tmp_path, monkeypatch):
    monkeypatch.setattr(noisepack.shutil, "which", lambda tool: tool)
    apt = FakeApt({}, returncode=100, stderr="E: Unable to locate package btanks-data")
    with pytest.raises(NoisePackError, match="apt-get update") as caught:
        fetch(tmp_path / "out", packages=["btanks-data"], runner=apt)
    assert "Unable to locate package" in str(caught.value)


def test_missing_tools_raise_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(noisepack.shutil, "which", lambda tool: None)
    apt = FakeApt({})
    with pytest.raises(NoisePackError, match="apt-get and dpkg-deb not found") as caught:
        fetch(tmp_path / "out", runner=apt)
    assert "synthetic noise" in str(caught.value)
    assert apt.calls == []


def test_unknown_package_is_refused(tmp_path):
    with pytest.raises(NoisePackError, match="not in the noise pack: vim"):
        fetch(tmp_path / "out", packages=["vim"], runner=FakeApt({}))


def test_member_names_cannot_climb_or_escape_a_pattern():
    clean = noisepack._clean_member_name
    assert clean("./usr/share/x.wav") == "usr/share/x.wav"
    assert clean("./usr/../../etc/passwd") is None
    assert clean("/etc/passwd") is None
    pattern = "usr/share/games/etw/crowd/crowd*.wav"
    assert noisepack._member_matches("usr/share/games/etw/crowd/crowd17.wav", pattern)
    assert not noisepack._member_matches("usr/share/games/etw/crowd/x/crowd1.wav", pattern)
    assert not noisepack._member_matches("usr/share/games/etw/crowd/crowd1.wav.bak", pattern)


def test_noise_sources_match_the_documented_pack():
    assert {s.package for s in NOISE_SOURCES} == {
        "btanks-data",
        "scorched3d-data",
        "etw-data",
        "plee-the-bear-data",
        "lmms-common",
        "tuxfootball",
    }
    assert all(s.environment in ENVIRONMENTS and s.licence for s in NOISE_SOURCES)
    assert all(not s.path.startswith(("/", "./")) and ".." not in s.path for s in NOISE_SOURCES)
    by_env = {s.environment for s in NOISE_SOURCES}
    assert {"street", "rain", "waves", "birds", "city", "crowd", "babble"} <= by_env
    apoc = [s for s in NOISE_SOURCES if "/apoc/" in s.path]
    assert {s.licence for s in apoc} == {"CC-BY-SA-3.0"}
    assert all("synthetic" in s.name for s in SYNTHETIC_SOURCES)
    assert {s.kind for s in SYNTHETIC_SOURCES} == {"pink", "brown"}


# ---------------------------------------------------------------- synthetic noise


def slope_db_per_octave(
    signal: np.ndarray, sr: int, lo: float = 100.0, hi: float = 4000.0
) -> float:
    """Welch-style averaged power spectrum, then a straight line in dB over log2(f)."""
    size = 4096
    window = np.hanning(size)
    frames = [signal[i : i + size] * window for i in range(0, len(signal) - size, size // 2)]
    power = np.mean([np.abs(np.fft.rfft(f)) ** 2 for f in frames], axis=0)
    freqs = np.fft.rfftfreq(size, 1 / sr)
    band = (freqs >= lo) & (freqs <= hi)
    return float(np.polyfit(np.log2(freqs[band]), 10 * np.log10(power[band]), 1)[0])


@pytest.mark.parametrize(("kind", "expected"), [("white", 0.0), ("pink", -3.0), ("brown", -6.0)])
def test_synthetic_noise_has_its_colours_slope(kind, expected):
    noise = synthetic_noise(kind, seconds=8.0, sr=16_000, seed=1)
    assert noise.dtype == np.float32 and noise.shape == (128_000,)
    assert np.max(np.abs(noise)) == pytest.approx(0.5, abs=1e-6)
    assert slope_db_per_octave(noise.astype(np.float64), 16_000) == pytest.approx(expected, abs=0.5)


def test_synthetic_noise_is_deterministic_by_seed():
    a = synthetic_noise("pink", 0.5, seed=3)
    assert np.array_equal(a, synthetic_noise("pink", 0.5, seed=3))
    assert not np.array_equal(a, synthetic_noise("pink", 0.5, seed=4))
    assert abs(float(np.mean(a))) < 0.01  # no DC offset


def test_synthetic_noise_refuses_bad_arguments():
    with pytest.raises(ValueError, match="kind"):
        synthetic_noise("purple", 1.0)
    with pytest.raises(ValueError, match="too short"):
        synthetic_noise("pink", 0.0)
