"""Noise profiles: upload, the Debian noise pack, previews, curation, delete.

Every noise file is decoded once when it arrives (which proves it is audio), stored as
16 kHz mono FLAC (the rate the noise mix-up works at, so mixing never resamples; 24-bit
so that quiet recordings keep their detail) and measured: duration, the original
sample rate, RMS and peak level in dBFS. Near-silent files are refused, since mixing
them at any SNR would need absurd gains.
"""

import io
import logging
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.files import File
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Q

from emotions.models import DerivedBlocks, Job, NoiseProfile, TrainingRun, Visibility
from emotions.services import jobs
from emotions.services.datasets import SOURCE_NOISE_PACK, NotAllowed, delete_files, require_editor
from emotions.services.errors import Conflict, ServiceError
from emotions.services.files import check_upload, local_copy, safe_filename, store_in

logger = logging.getLogger(__name__)

# Below this RMS level a file is refused as silent: -90 dBFS is under the noise floor of
# 16-bit audio (about -96 dBFS for a full-scale sine), so nothing audible is left.
MIN_RMS_DBFS = -90.0
MIN_SECONDS = 0.1
# Noise is decoded while the upload request waits; longer recordings should be cut.
DEFAULT_MAX_SECONDS = 20 * 60
SYNTHETIC_SECONDS = 60.0
# The pack's environment names where they differ from NoiseProfile.Environment.
PACK_ENVIRONMENTS = {"air_conditioning": NoiseProfile.Environment.AIRCON}
PREVIEW_SECONDS = 30.0
PREVIEW_COLUMNS = 900
PREVIEW_TOP_DB = 80.0


@dataclass(frozen=True)
class NoiseLevels:
    duration_s: float
    sample_rate: int  # of the original file
    rms_dbfs: float
    peak_dbfs: float


def _dbfs(value: float) -> float:
    return float(10.0 * np.log10(value)) if value > 0 else float("-inf")


def encode_noise(source: Path, target: Path, name: str = "") -> NoiseLevels:
    """Decode `source`, write it to `target` as 16 kHz mono FLAC and measure it (`name`:
    the file's name as the user knows it, for messages; `source` may be a temporary file).

    Streamed chunk by chunk, so a long recording never sits in memory whole. Levels are
    those of the 16 kHz signal that mixing uses; RMS in dBFS with a full-scale square
    wave at 0 dB, as the audio core's block levels.
    """
    import soundfile as sf

    from emotions.ser import audio
    from emotions.ser.constants import SAMPLE_RATE

    info = audio.probe(source)
    max_seconds = getattr(settings, "NOISE_MAX_SECONDS", DEFAULT_MAX_SECONDS)
    if info.duration_s > max_seconds:
        raise ServiceError(
            f"“{name or source.name}” lasts {info.duration_s / 60:.0f} minutes; noise "
            f"recordings are limited to {max_seconds / 60:.0f} minutes. Cut a representative part."
        )
    squares, peak, n = 0.0, 0.0, 0
    with sf.SoundFile(
        str(target), "w", samplerate=SAMPLE_RATE, channels=1, format="FLAC", subtype="PCM_24"
    ) as out:
        for chunk in audio.iter_decode(source):
            out.write(chunk)
            squares += float(np.dot(chunk.astype(np.float64), chunk.astype(np.float64)))
            peak = max(peak, float(np.max(np.abs(chunk))))
            n += chunk.size
    return NoiseLevels(
        duration_s=round(n / SAMPLE_RATE, 4),
        sample_rate=info.sample_rate,
        rms_dbfs=round(_dbfs(squares / n), 2),
        peak_dbfs=round(_dbfs(peak * peak), 2),
    )


def check_levels(levels: NoiseLevels, name: str) -> None:
    if levels.duration_s < MIN_SECONDS:
        raise ServiceError(f"“{name}” is too short ({levels.duration_s:.2f} s) to use as noise.")
    if not levels.rms_dbfs >= MIN_RMS_DBFS:
        level = "digital silence" if levels.rms_dbfs == float("-inf") else f"{levels.rms_dbfs} dBFS"
        raise ServiceError(
            f"“{name}” is silent (its level is {level}, below {MIN_RMS_DBFS:.0f} dBFS): "
            "a noise recording must contain audible sound."
        )


@contextmanager
def _upload_on_disk(upload: UploadedFile) -> Iterator[Path]:
    """A path holding the upload's bytes (the decoder needs one)."""
    if hasattr(upload, "temporary_file_path"):
        yield Path(upload.temporary_file_path())
        return
    suffix = Path(safe_filename(upload.name)).suffix
    with tempfile.NamedTemporaryFile(suffix=suffix) as tmp:
        for chunk in upload.chunks():
            tmp.write(chunk)
        tmp.flush()
        yield Path(tmp.name)


@contextmanager
def _encoded(source: Path, display_name: str) -> Iterator[tuple[Path, NoiseLevels]]:
    """`source` converted to a temporary FLAC file and measured; refusals as ServiceError."""
    from emotions.ser import audio

    with tempfile.TemporaryDirectory(prefix="sersite-noise-") as tmp:
        target = Path(tmp) / "noise.flac"
        try:
            levels = encode_noise(source, target, display_name)
        except audio.AudioDecodeError as exc:
            raise ServiceError(
                f"“{display_name}” is not a recording the site can read: {exc.reason}."
            ) from exc
        check_levels(levels, display_name)
        yield target, levels


def _save(profile: NoiseProfile, flac: Path, stem: str, levels: NoiseLevels) -> NoiseProfile:
    profile.duration_s = levels.duration_s
    profile.original_sample_rate = levels.sample_rate
    profile.rms_dbfs = levels.rms_dbfs
    profile.peak_dbfs = levels.peak_dbfs
    with open(flac, "rb") as fh:
        store_in(profile.audio, f"{safe_filename(stem, 'noise')}.flac", File(fh))
    try:
        profile.save()
    except Exception:
        profile.audio.delete(save=False)
        raise
    return profile


def _environment(value: str) -> str:
    if value not in NoiseProfile.Environment.values:
        raise ServiceError(f"Unknown environment “{value}”.")
    return value


def create_noise_profile(
    owner,
    upload: UploadedFile,
    *,
    name: str = "",
    environment: str = NoiseProfile.Environment.OTHER,
    visibility: str = Visibility.PRIVATE,
) -> NoiseProfile:
    """Check, convert, measure and store an uploaded noise recording."""
    check_upload(upload, settings.MAX_UPLOAD_BYTES)
    if visibility not in Visibility.values:
        raise ServiceError(f"Unknown visibility “{visibility}”.")
    stem = Path(safe_filename(upload.name, "noise")).stem
    profile = NoiseProfile(
        owner=owner,
        name=(name.strip() or stem)[:200],
        environment=_environment(environment),
        visibility=visibility,
        source_path=(upload.name or "")[:500],
    )
    with _upload_on_disk(upload) as path, _encoded(path, upload.name) as (flac, levels):
        return _save(profile, flac, stem, levels)


def update_noise_profile(user, profile: NoiseProfile, **fields) -> NoiseProfile:
    require_editor(user, profile, "change this noise recording")
    for key, value in fields.items():
        if key == "environment":
            value = _environment(value)
        elif key not in {"name", "visibility"}:
            raise ServiceError(f"“{key}” cannot be changed here.")
        setattr(profile, key, value)
    profile.save(update_fields=list(fields) or None)
    return profile


def delete_noise_profile(user, profile: NoiseProfile) -> None:
    """Delete the profile, the noisy blocks made with it, and their files."""
    require_editor(user, profile, "delete this noise recording")
    runs = TrainingRun.objects.filter(Q(train_noises=profile) | Q(test_noises=profile)).distinct()
    if runs.exists():
        raise Conflict(
            f"This noise was used by {runs.count()} training run(s); delete those first, so "
            "that every trained model keeps a record of the noise it was tested with."
        )
    names = [profile.audio.name]
    names += DerivedBlocks.objects.filter(noise=profile).values_list("data", flat=True)
    with transaction.atomic():
        profile.delete()
        transaction.on_commit(lambda: delete_files(names))


# ---------------------------------------------------------------- previews


def spectrogram_png(profile: NoiseProfile) -> bytes:
    """A jet-coloured power spectrogram of the first half minute, as a PNG image."""
    from emotions.ser import audio
    from emotions.ser.constants import SAMPLE_RATE

    with local_copy(profile.audio) as path:
        try:
            first = next(audio.iter_decode(path, chunk_seconds=PREVIEW_SECONDS))
        except audio.AudioDecodeError as exc:
            raise ServiceError(f"The stored noise cannot be read: {exc.reason}.") from exc
    return preview_png(first, SAMPLE_RATE)


def preview_png(x: np.ndarray, sr: int, n_fft: int = 512) -> bytes:
    """Power spectrogram (Hamming window, hop n_fft/2) in dB below the loudest bin,
    coloured with jet, low frequencies at the bottom; columns averaged down to at most
    PREVIEW_COLUMNS. For display only: models use emotions.ser.spectrogram."""
    from matplotlib import colormaps
    from PIL import Image

    x = np.asarray(x, dtype=np.float32)
    if x.size < n_fft:
        x = np.pad(x, (0, n_fft - x.size))
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[:: n_fft // 2]
    power = np.abs(np.fft.rfft(frames * np.hamming(n_fft).astype(np.float32), axis=1)) ** 2
    group = -(-power.shape[0] // PREVIEW_COLUMNS)
    if group > 1:
        usable = power.shape[0] // group * group
        power = power[:usable].reshape(-1, group, power.shape[1]).mean(axis=1)
    db = 10.0 * np.log10(np.maximum(power, 1e-10))
    db = np.clip(db - db.max(), -PREVIEW_TOP_DB, 0.0)
    levels = (db.T[::-1] + PREVIEW_TOP_DB) / PREVIEW_TOP_DB
    rgb = (colormaps["jet"](levels)[..., :3] * 255).round().astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="PNG")
    return out.getvalue()


# ---------------------------------------------------------------- the Debian noise pack


def start_noise_pack(user, packages: list[str] | None = None) -> Job:
    """Queue the job that fetches the noise pack (staff only)."""
    if not user.is_staff:
        raise NotAllowed("Only administrators can fetch the noise pack.")
    from emotions.ser import noisepack

    known = noisepack.noise_packages()
    unknown = [p for p in packages or [] if p not in known]
    if unknown:
        raise ServiceError(f"Not in the noise pack: {', '.join(unknown)}.")
    params = {"source": SOURCE_NOISE_PACK, "packages": list(packages or [])}
    return jobs.create_job(user, Job.Kind.IMPORT, params)


def run_noise_pack(job: Job, reporter: jobs.Reporter) -> dict:
    """The noise-pack job, run by the import task."""
    packages = job.params.get("packages") or None

    def progress(fraction: float, message: str) -> None:
        reporter.progress(fraction, "noise pack", message)

    return import_noise_pack(job.owner, packages=packages, progress=progress)


def import_noise_pack(
    owner,
    *,
    packages: list[str] | None = None,
    synthetic: bool = True,
    progress: Callable[[float, str], None] | None = None,
    runner: Callable[..., subprocess.CompletedProcess] | None = None,
) -> dict:
    """Import the synthetic noises and the pack's recordings as shared profiles.

    Idempotent: a file already imported (same package and path, or the same synthetic
    kind) is left as it is. The synthetic noises come first, so they arrive even where
    apt-get is missing; the fetch error is then raised with a count of what did arrive.
    """
    from emotions.ser import noisepack

    progress = progress or (lambda fraction, message: None)
    counts = {"added": 0, "already_present": 0, "skipped": []}
    if synthetic:
        for source in noisepack.SYNTHETIC_SOURCES:
            _add_synthetic(owner, source, counts)
    progress(0.05, "Downloading the Debian packages…")
    with tempfile.TemporaryDirectory(prefix="sersite-noisepack-") as tmp:
        kwargs = {"packages": packages}
        if runner is not None:
            kwargs["runner"] = runner
        try:
            records = noisepack.fetch(Path(tmp), **kwargs)
        except noisepack.NoisePackError as exc:
            arrived = f" ({counts['added']} synthetic noise(s) added)" if counts["added"] else ""
            raise ServiceError(f"The noise pack could not be fetched{arrived}: {exc}") from exc
        for i, record in enumerate(records, start=1):
            _add_recording(owner, record, counts)
            progress(0.1 + 0.9 * i / len(records), f"{i} of {len(records)} recordings converted")
    return counts


def _add_synthetic(owner, source, counts: dict) -> None:
    from emotions.ser import audio, noisepack
    from emotions.ser.constants import SAMPLE_RATE

    key = f"synthetic/{source.kind}"
    if NoiseProfile.objects.filter(synthetic=True, source_path=key).exists():
        counts["already_present"] += 1
        return
    samples = noisepack.synthetic_noise(source.kind, SYNTHETIC_SECONDS, SAMPLE_RATE, seed=0)
    with tempfile.TemporaryDirectory(prefix="sersite-noise-") as tmp:
        wav = audio.write_wav(Path(tmp) / f"{source.kind}.wav", samples, subtype="FLOAT")
        with _encoded(wav, source.name) as (flac, levels):
            _save(
                NoiseProfile(
                    owner=owner,
                    name=source.name,
                    environment=PACK_ENVIRONMENTS.get(source.environment, source.environment),
                    synthetic=True,
                    source_path=key,
                    licence="generated by sersite (no rights reserved)",
                    attribution=f"Synthetic: {source.description} (seed 0, "
                    f"{SYNTHETIC_SECONDS:.0f} s).",
                    visibility=Visibility.SHARED,
                ),
                flac,
                source.name,
                levels,
            )
    counts["added"] += 1


def _add_recording(owner, record, counts: dict) -> None:
    exists = NoiseProfile.objects.filter(
        source_package=record.package, source_path=record.path_in_package
    ).exists()
    if exists:
        counts["already_present"] += 1
        return
    environment = PACK_ENVIRONMENTS.get(record.environment, record.environment)
    if environment not in NoiseProfile.Environment.values:
        environment = NoiseProfile.Environment.OTHER
    profile = NoiseProfile(
        owner=owner,
        name=record.name[:200],
        environment=environment,
        source_package=record.package[:100],
        source_path=record.path_in_package[:500],
        licence=record.licence[:100],
        attribution=(
            f"“{record.name}”: {record.path_in_package} from the Debian package "
            f"{record.package} {record.package_version} (sha256 {record.sha256}). "
            f"Licence: {record.licence}.\n\n{record.attribution}"
        ),
        visibility=Visibility.SHARED,
    )
    try:
        with _encoded(Path(record.path), record.name) as (flac, levels):
            _save(profile, flac, Path(record.path_in_package).stem, levels)
    except ServiceError as exc:
        logger.warning("noise pack: %s skipped: %s", record.path_in_package, exc.message)
        counts["skipped"].append({"path": record.path_in_package, "reason": exc.message})
        return
    counts["added"] += 1
