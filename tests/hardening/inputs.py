"""Bad (and merely unusual) uploads, each built here in a few milliseconds.

Every builder returns bytes; nothing is read from disk. Names that must never appear
outside the media folder carry MARKER, so a walk of the temporary and media trees can
find a file that escaped.
"""

import io
import struct
import tarfile
import zipfile

import av
import numpy as np
import soundfile as sf

MARKER = "hx7q"
SR = 16_000


def voiced(seconds: float, sr: int = SR, f0: float = 150.0, amp: float = 0.25) -> np.ndarray:
    """Speech-like sound: five harmonics under a 4 Hz syllable envelope (well above silence)."""
    t = np.arange(int(round(seconds * sr))) / sr
    tone = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
    return (amp * tone * 0.5 * (1 + np.sin(2 * np.pi * 4 * t))).astype(np.float32)


def wav(signal: np.ndarray, sr: int = SR, subtype: str = "PCM_16") -> bytes:
    out = io.BytesIO()
    sf.write(out, signal, sr, format="WAV", subtype=subtype)
    return out.getvalue()


def valid_wav(seconds: float = 2.0) -> bytes:
    return wav(voiced(seconds))


# ---------------------------------------------------------------- broken containers


def truncated_header() -> bytes:
    """The first 30 bytes of a WAV: RIFF and part of the fmt chunk, no data chunk."""
    return valid_wav(1.0)[:30]


def header_claims_more(seconds: float = 1.0, claimed_s: float = 60.0) -> bytes:
    """A WAV whose RIFF and data sizes claim `claimed_s` seconds; only `seconds` are there
    (what a recorder that crashed before closing its file leaves behind)."""
    data = bytearray(valid_wav(seconds))
    assert data[36:40] == b"data"
    claimed = int(claimed_s * SR * 2)
    data[4:8] = struct.pack("<I", claimed + 36)
    data[40:44] = struct.pack("<I", claimed)
    return bytes(data)


def header_says_rate(rate: int = 1, seconds: float = 3.0) -> bytes:
    """A WAV whose fmt chunk claims `rate` Hz: 3 s of 16 kHz samples (96 KB) then read as
    13 h 20 min at 1 Hz."""
    data = bytearray(valid_wav(seconds))
    assert data[12:16] == b"fmt "
    data[24:28] = struct.pack("<I", rate)
    data[28:32] = struct.pack("<I", rate * 2)
    return bytes(data)


def random_bytes(n: int = 64_000, seed: int = 1) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def html_page() -> bytes:
    return (
        b"<!doctype html><html><head><title>talk</title></head><body>"
        b"<script>fetch('/api/lectures/').then(r => r.text()).then(alert)</script>"
        b"</body></html>\n"
    )


# ---------------------------------------------------------------- unusual but real audio


def many_channels(channels: int = 8, sr: int = 48_000, seconds: float = 2.0) -> bytes:
    x = voiced(seconds, sr)
    # Each channel its own gain, one of them silent: the mono mix is still speech.
    gains = np.linspace(0.0, 1.0, channels, dtype=np.float32)
    return wav(np.outer(x, gains), sr)


def high_rate(sr: int = 192_000, seconds: float = 2.0) -> bytes:
    x = voiced(seconds, sr)
    return wav(np.stack([x, x], axis=1), sr, subtype="PCM_24")


def twenty_ms() -> bytes:
    return wav(voiced(0.02, amp=0.8))


def silence_flac(seconds: float, sr: int = 8_000) -> bytes:
    """Digital silence as 8 kHz FLAC: an hour is about 100 kB and takes a second to write."""
    out = io.BytesIO()
    zeros = np.zeros(sr * 60, dtype=np.int16)
    with sf.SoundFile(out, "w", sr, 1, format="FLAC", subtype="PCM_16") as flac:
        for _ in range(int(seconds // 60)):
            flac.write(zeros)
        flac.write(zeros[: int(seconds % 60 * sr)])
    return out.getvalue()


def nan_and_inf(seconds: float = 3.0) -> bytes:
    """Float WAV of speech with NaN, +Inf and -Inf samples scattered through it."""
    x = voiced(seconds)
    rng = np.random.default_rng(3)
    for value in (np.nan, np.inf, -np.inf):
        x[rng.choice(x.size, 200, replace=False)] = value
    x[SR : SR + 400] = np.nan  # and a solid run of them
    return wav(x, subtype="FLOAT")


def clipped(seconds: float = 2.0, gain: float = 1000.0) -> bytes:
    """Float WAV at 60 dB above full scale (samples up to ±300), like a broken gain stage."""
    return wav(voiced(seconds) * gain, subtype="FLOAT")


def video_without_audio(frames: int = 12) -> bytes:
    """A tiny MPEG-4 video (mp4 container) with no audio track at all."""
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=12)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(frames):
            image = np.full((48, 64, 3), (i * 20) % 256, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()


# ---------------------------------------------------------------- archives


def zip_of(files: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16) | 0  # S_IFLNK, as `zip --symlinks` stores it
            archive.writestr(info, target)
    return out.getvalue()


def tar_of(files: dict[str, bytes], extra: list[tarfile.TarInfo] = ()) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for info in extra:
            archive.addfile(info)
    return out.getvalue()


def corpus(labels=("angry", "calm"), per_label: int = 2) -> dict[str, bytes]:
    """A small valid corpus in the one-folder-per-emotion layout."""
    return {
        f"{label}/spk{i}_{label}.wav": wav(voiced(1.0, f0=120 + 30 * i + 60 * j))
        for j, label in enumerate(labels)
        for i in range(per_label)
    }


def tar_member(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


def zip_declaring(total_bytes: int, members: int = 6) -> bytes:
    """A zip whose central directory declares `total_bytes` uncompressed in all (a bomb's
    signature) while holding a few bytes: the size check must refuse it before unpacking."""
    data = bytearray(zip_of({f"angry/{MARKER}-bomb{i}.wav": b"x" for i in range(members)}))
    each = min(total_bytes // members, 0xFFFFFFFE)
    at = 0
    while (at := data.find(b"PK\x01\x02", at)) >= 0:
        data[at + 24 : at + 28] = struct.pack("<I", each)  # uncompressed size
        at += 4
    return bytes(data)


def zip_holding_more_than_declared() -> bytes:
    """A zip member that inflates to far more than its declared size (1 MB of zeros
    declared as 100 bytes): extraction must stop at the declared size and refuse it."""
    data = bytearray(zip_of({"angry/a.wav": bytes(1_000_000)}))
    at = 0
    while (at := data.find(b"PK\x01\x02", at)) >= 0:
        data[at + 24 : at + 28] = struct.pack("<I", 100)
        at += 4
    at = data.find(b"PK\x03\x04")
    data[at + 22 : at + 26] = struct.pack("<I", 100)
    return bytes(data)


def tar_declaring(total_bytes: int) -> bytes:
    """A tar whose one member's header declares `total_bytes` (GNU base-256 size field);
    the content that follows is cut short. Refused from the header alone."""
    info = tarfile.TarInfo(f"angry/{MARKER}-huge.wav")
    info.size = total_bytes
    return info.tobuf(tarfile.GNU_FORMAT) + bytes(4096)


def zip_encrypted() -> bytes:
    """A zip whose members say they are encrypted (general-purpose flag bit 0)."""
    data = bytearray(zip_of(corpus()))
    for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = 0
        while (at := data.find(signature, at)) >= 0:
            data[at + flags_at] |= 0x01
            at += 4
    return bytes(data)
