"""The environmental noise pack: real recordings from Debian game-data packages.

No noise corpus can be downloaded at run time, but several Debian packages carry
long ambient loops (street, forest, rain, crowds). `fetch` downloads each package
with `apt-get download` (no root needed, nothing installed), streams its file
system out of the .deb with `dpkg-deb --fsys-tarfile`, and writes only the listed
files plus the package's copyright file, kept as the attribution the licences ask
for. Fan and air-conditioning noise exist in no package, so `synthetic_noise`
makes coloured noise for them, which callers must label synthetic.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal
from urllib.parse import unquote

import numpy as np

from .constants import SAMPLE_RATE

# Environment tags a noise file can carry.
ENVIRONMENTS = (
    "street",
    "countryside",
    "forest",
    "swamp",
    "rain",
    "waves",
    "birds",
    "city",
    "crowd",
    "babble",
    "fan",
    "air_conditioning",
)


class NoisePackError(RuntimeError):
    """The noise pack cannot be fetched; the message says what to install or do."""


@dataclass(frozen=True)
class NoiseSource:
    """One file (or, with a wildcard in the file name, several) inside a Debian package."""

    package: str
    path: str  # inside the package, without a leading "./"
    name: str
    environment: str
    licence: str


@dataclass(frozen=True)
class FetchedNoise:
    path: Path
    name: str
    environment: str
    package: str
    package_version: str
    path_in_package: str
    licence: str
    attribution: str  # the package's copyright file, verbatim
    sha256: str


@dataclass(frozen=True)
class SyntheticNoiseSource:
    name: str
    kind: Literal["pink", "brown", "white"]
    environment: str
    description: str


_BTANKS = "usr/share/games/btanks/data/sounds/ambient"
_SCORCHED = "usr/share/games/scorched3d/data/globalmods"
_BTANKS_LICENCE = "GPL-2 with artwork exception"

NOISE_SOURCES: tuple[NoiseSource, ...] = (
    NoiseSource("btanks-data", f"{_BTANKS}/city.ogg", "street traffic", "street", _BTANKS_LICENCE),
    NoiseSource(
        "btanks-data", f"{_BTANKS}/country.ogg", "countryside", "countryside", _BTANKS_LICENCE
    ),
    NoiseSource("btanks-data", f"{_BTANKS}/forest.ogg", "forest", "forest", _BTANKS_LICENCE),
    NoiseSource("btanks-data", f"{_BTANKS}/swamp.ogg", "swamp", "swamp", _BTANKS_LICENCE),
    NoiseSource(
        "scorched3d-data", f"{_SCORCHED}/none/data/wav/misc/rain.wav", "rain", "rain", "GPL-2+"
    ),
    NoiseSource(
        "scorched3d-data",
        f"{_SCORCHED}/none/data/wav/misc/oceanwaves.wav",
        "ocean waves",
        "waves",
        "GPL-2+",
    ),
    NoiseSource(
        "scorched3d-data",
        f"{_SCORCHED}/none/data/wav/misc/birds1.wav",
        "birds 1",
        "birds",
        "GPL-2+",
    ),
    NoiseSource(
        "scorched3d-data",
        f"{_SCORCHED}/none/data/wav/misc/birds2.wav",
        "birds 2",
        "birds",
        "GPL-2+",
    ),
    NoiseSource(
        "scorched3d-data",
        f"{_SCORCHED}/apoc/data/wav/misc/citysounds.wav",
        "city",
        "city",
        "CC-BY-SA-3.0",
    ),
    NoiseSource(
        "scorched3d-data",
        f"{_SCORCHED}/apoc/data/wav/misc/cheeringloop.wav",
        "cheering crowd",
        "crowd",
        "CC-BY-SA-3.0",
    ),
    # crowd01.wav ... crowd17.wav: a stadium murmur, the closest packaged thing to babble.
    NoiseSource(
        "etw-data", "usr/share/games/etw/crowd/crowd*.wav", "stadium crowd", "babble", "GPL-2+"
    ),
    NoiseSource(
        "plee-the-bear-data",
        "usr/share/games/plee-the-bear/sound/weather/rain.ogg",
        "rain",
        "rain",
        "CC-BY-SA",
    ),
    NoiseSource(
        "lmms-common",
        "usr/share/lmms/samples/misc/raving_crowd01.ogg",
        "raving crowd",
        "crowd",
        "GPL-2+",
    ),
    NoiseSource(
        "tuxfootball",
        "usr/share/games/tuxfootball/sound/crowdboo.wav",
        "crowd booing",
        "crowd",
        "GPL-2+",
    ),
    NoiseSource(
        "tuxfootball",
        "usr/share/games/tuxfootball/sound/crowdcheer.wav",
        "crowd cheering",
        "crowd",
        "GPL-2+",
    ),
)

SYNTHETIC_SOURCES: tuple[SyntheticNoiseSource, ...] = (
    SyntheticNoiseSource(
        "fan (synthetic pink noise)", "pink", "fan", "generated 1/f noise standing in for a fan"
    ),
    SyntheticNoiseSource(
        "air conditioning (synthetic brown noise)",
        "brown",
        "air_conditioning",
        "generated 1/f^2 noise standing in for air conditioning",
    ),
)

Runner = Callable[..., subprocess.CompletedProcess]


def noise_packages() -> list[str]:
    """The packages NOISE_SOURCES draws on, in listing order."""
    return list(dict.fromkeys(source.package for source in NOISE_SOURCES))


def copyright_path(package: str) -> str:
    return f"usr/share/doc/{package}/copyright"


def fetch(
    dest_dir: Path,
    *,
    workdir: Path | None = None,
    packages: Iterable[str] | None = None,
    runner: Runner = subprocess.run,
) -> list[FetchedNoise]:
    """Download the listed packages and extract their noise files under dest_dir/PKG/.

    `workdir` keeps the downloaded .deb files (a second call reuses them); by default
    a temporary folder is used and removed. `runner` runs `apt-get download`
    (replaceable in tests).
    """
    wanted = _select_packages(packages)
    _require_tools()
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    if workdir is not None:
        Path(workdir).mkdir(parents=True, exist_ok=True)
        return _fetch_all(wanted, dest_dir, Path(workdir), runner)
    with tempfile.TemporaryDirectory(prefix="noisepack-") as tmp:
        return _fetch_all(wanted, dest_dir, Path(tmp), runner)


def _select_packages(requested: Iterable[str] | None) -> list[str]:
    known = noise_packages()
    if requested is None:
        return known
    requested = list(dict.fromkeys(requested))
    unknown = [p for p in requested if p not in known]
    if unknown:
        raise NoisePackError(
            f"not in the noise pack: {', '.join(unknown)}; known: {', '.join(known)}"
        )
    return requested


def _require_tools() -> None:
    missing = [tool for tool in ("apt-get", "dpkg-deb") if shutil.which(tool) is None]
    if missing:
        raise NoisePackError(
            f"{' and '.join(missing)} not found: the noise pack is fetched from Debian packages. "
            "Run this on Debian or Ubuntu (apt and dpkg are part of the base system), or "
            "install apt and dpkg; otherwise use synthetic noise or your own noise files."
        )


def _fetch_all(
    packages_: Sequence[str], dest_dir: Path, workdir: Path, runner: Runner
) -> list[FetchedNoise]:
    fetched: list[FetchedNoise] = []
    for package in packages_:
        deb = _download(package, workdir, runner)
        fetched.extend(_extract_package(package, deb, dest_dir))
    return fetched


def _download(package: str, workdir: Path, runner: Runner) -> Path:
    existing = _debs_of(package, workdir)
    if existing:
        return existing[-1]
    try:
        result = runner(
            ["apt-get", "download", package],
            cwd=str(workdir),
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError as exc:
        raise NoisePackError(
            "apt-get not found: run this on Debian or Ubuntu, or install apt"
        ) from exc
    if result.returncode != 0:
        detail = (result.stderr or result.stdout or "").strip().splitlines()[-3:]
        raise NoisePackError(
            f"apt-get download {package} failed ({result.returncode}): {' '.join(detail)}. "
            "If the package is unknown, run 'apt-get update' first (as root) so apt has "
            "current package lists."
        )
    debs = _debs_of(package, workdir)
    if not debs:
        raise NoisePackError(f"apt-get download {package} succeeded but left no {package}_*.deb")
    return debs[-1]


def _debs_of(package: str, workdir: Path) -> list[Path]:
    # Newest last: several versions can pile up in a kept workdir.
    return sorted(workdir.glob(f"{package}_*.deb"), key=lambda p: p.stat().st_mtime)


def _package_version(deb: Path, package: str) -> str:
    """'0.9.8083-9' from 'btanks-data_0.9.8083-9_all.deb' (apt writes an epoch's ':' as %3a)."""
    parts = deb.stem.split("_")
    return unquote(parts[1]) if len(parts) >= 3 and parts[0] == package else "unknown"


def _extract_package(package: str, deb: Path, dest_dir: Path) -> list[FetchedNoise]:
    sources = [s for s in NOISE_SOURCES if s.package == package]
    written, notes = _extract_members(
        deb, [s.path for s in sources] + [copyright_path(package)], dest_dir / package
    )
    attribution = _attribution(package, written, notes)
    version = _package_version(deb, package)
    missing = [
        s.path for s in sources if not any(_member_matches(name, s.path) for name in written)
    ]
    if missing:
        raise NoisePackError(
            f"{deb.name} lacks {', '.join(missing)}: the package layout changed; "
            "update NOISE_SOURCES"
        )
    records = []
    for source in sources:
        for name in sorted(n for n in written if _member_matches(n, source.path)):
            path, digest = written[name]
            records.append(
                FetchedNoise(
                    path=path,
                    name=_display_name(source, name),
                    environment=source.environment,
                    package=package,
                    package_version=version,
                    path_in_package=name,
                    licence=source.licence,
                    attribution=attribution,
                    sha256=digest,
                )
            )
    return records


def _display_name(source: NoiseSource, member: str) -> str:
    if _is_pattern(source.path):
        return f"{source.name} ({PurePosixPath(member).stem})"
    return source.name


def _attribution(package: str, written: dict[str, tuple[Path, str]], notes: dict[str, str]) -> str:
    entry = written.get(copyright_path(package))
    if entry is not None:
        return entry[0].read_text(encoding="utf-8", errors="replace")
    note = notes.get(f"usr/share/doc/{package}", "")
    return f"No copyright file inside {package}{note}; see Debian's copyright for {package}."


def _is_pattern(path: str) -> bool:
    return any(ch in path for ch in "*?[")


def _member_matches(name: str, wanted: str) -> bool:
    """Exact name, or a wildcard over the file name only: the folder must match exactly,
    so a pattern can never reach a member elsewhere (fnmatch's * would cross "/")."""
    if not _is_pattern(wanted):
        return name == wanted
    name_path, wanted_path = PurePosixPath(name), PurePosixPath(wanted)
    return name_path.parent == wanted_path.parent and fnmatch.fnmatchcase(
        name_path.name, wanted_path.name
    )


def _clean_member_name(raw: str) -> str | None:
    """The member's name without "./", or None when it is absolute or climbs with "..".

    Wanted names never contain either, so such members could only match through a
    trick; they are refused before any comparison."""
    name = raw[2:] if raw.startswith("./") else raw
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not name:
        return None
    return str(path)


def _extract_members(
    deb: Path, wanted: Sequence[str], out_root: Path
) -> tuple[dict[str, tuple[Path, str]], dict[str, str]]:
    """Stream the .deb's file system and write the wanted regular files under out_root.

    Returns {member name: (written path, sha256)} and notes on wanted doc folders
    that are symlinks (their copyright lives in another package).
    """
    written: dict[str, tuple[Path, str]] = {}
    notes: dict[str, str] = {}
    doc_dirs = {str(PurePosixPath(w).parent) for w in wanted if w.startswith("usr/share/doc/")}
    try:
        proc = subprocess.Popen(
            ["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    except FileNotFoundError as exc:
        raise NoisePackError("dpkg-deb not found: install dpkg (Debian's package tool)") from exc
    assert proc.stdout is not None and proc.stderr is not None
    tar_error: tarfile.TarError | None = None
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|*") as archive:
            for member in archive:
                _take_member(archive, member, wanted, doc_dirs, out_root, written, notes)
        # Read the end-of-archive padding too, so dpkg-deb never dies on a closed pipe.
        while proc.stdout.read(1 << 16):
            pass
    except tarfile.TarError as exc:
        tar_error = exc
    finally:
        # Closing our end first lets dpkg-deb stop (SIGPIPE) if we bailed out early.
        proc.stdout.close()
        stderr = proc.stderr.read().decode("utf-8", errors="replace").strip()
        proc.stderr.close()
        code = proc.wait()
    if code != 0 or tar_error is not None:
        detail = stderr or str(tar_error)
        raise NoisePackError(f"cannot read {deb.name} as a Debian package: {detail}")
    return written, notes


def _take_member(
    archive: tarfile.TarFile,
    member: tarfile.TarInfo,
    wanted: Sequence[str],
    doc_dirs: set[str],
    out_root: Path,
    written: dict[str, tuple[Path, str]],
    notes: dict[str, str],
) -> None:
    name = _clean_member_name(member.name)
    if name is None:
        return
    if name in doc_dirs and member.issym():
        notes[name] = f" (usr/share/doc/{PurePosixPath(name).name} links to {member.linkname})"
    # Regular files only: links, devices and folders from the archive are never created.
    if member.isfile() and any(_member_matches(name, w) for w in wanted):
        source = archive.extractfile(member)
        assert source is not None  # isfile() guarantees content
        written[name] = _write_member(source, out_root, name)


def _write_member(source, out_root: Path, name: str) -> tuple[Path, str]:
    target = out_root / name
    # Belt and braces after _clean_member_name: the target must stay inside out_root.
    if not target.resolve().is_relative_to(out_root.resolve()):
        raise NoisePackError(f"refusing to write {name} outside {out_root.name}")
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    partial = target.with_name(target.name + ".part")
    with open(partial, "wb") as handle:
        while chunk := source.read(1 << 16):
            digest.update(chunk)
            handle.write(chunk)
    os.replace(partial, target)
    return target, digest.hexdigest()


# Power-spectrum exponent of each colour: P(f) ~ 1 / f**exponent.
_EXPONENTS = {"white": 0.0, "pink": 1.0, "brown": 2.0}
# Below this the shaping is flat: otherwise brown noise would put most of its
# energy under 20 Hz, where nobody hears it but the RMS-based SNR maths counts it.
_LOWEST_SHAPED_HZ = 20.0
PEAK = 0.5


def synthetic_noise(
    kind: Literal["pink", "brown", "white"],
    seconds: float,
    sr: int = SAMPLE_RATE,
    seed: int = 0,
) -> np.ndarray:
    """Coloured Gaussian noise by spectral shaping, peak-normalised to PEAK, float32.

    Pink falls by 3 dB per octave (power ~ 1/f), brown by 6 dB (~ 1/f^2), white is flat.
    """
    if kind not in _EXPONENTS:
        raise ValueError(f"kind must be one of {sorted(_EXPONENTS)}, not {kind!r}")
    n = round(seconds * sr)
    if n < 2:
        raise ValueError(f"{seconds} s at {sr} Hz is too short for noise")
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, d=1.0 / sr)
    # Amplitude ~ f^(-exponent/2) gives power ~ f^(-exponent).
    gain = np.maximum(freqs, _LOWEST_SHAPED_HZ) ** (-_EXPONENTS[kind] / 2.0)
    gain[0] = 0.0  # no DC offset
    noise = np.fft.irfft(spectrum * gain, n=n)
    peak = np.max(np.abs(noise))
    return (noise * (PEAK / peak)).astype(np.float32)
