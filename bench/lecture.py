"""End-to-end lecture analysis on this machine: decode → 1 s segments → model → stored report.

Runs the real job body (the same code a worker runs) against a throwaway SQLite database
and media folder, on an hour (by default) of generated lecture-like audio with pauses.
Prints, per backbone: seconds, real-time factor, time to the first stored+published
segments, blocks/s, and peak memory (RSS) of the process; then the ratio against the
target of 60× real time. The reference measured in the same run is the audio duration.

    .venv/bin/python bench/lecture.py [--minutes 60] [--backbones mobilenet_v3_small,alexnet]
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def make_lecture(path: Path, minutes: float, sr: int = 16_000) -> float:
    """Speech-like harmonics with syllable envelope, a pause every ~20 s; FLAC on disk."""
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(0)
    seconds = int(minutes * 60)
    with sf.SoundFile(path, "w", sr, 1, format="FLAC") as out:
        for start in range(0, seconds, 10):
            t = np.arange(10 * sr) / sr + start
            f0 = 120 + 60 * np.sin(2 * np.pi * t / 7)
            phase = 2 * np.pi * np.cumsum(f0) / sr
            tone = sum(np.sin(k * phase) / k for k in range(1, 6))
            envelope = 0.5 * (1 + np.sin(2 * np.pi * 4 * t))
            chunk = 0.2 * tone * envelope + 0.005 * rng.standard_normal(t.size)
            if (start // 10) % 2 == 1:
                chunk[: 3 * sr] = 0.0  # a 3 s pause every 20 s
            out.write(chunk.astype("float32"))
    return float(seconds)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--backbones", default="mobilenet_v3_small,alexnet,mobilenet_v2")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    backbones = args.backbones.split(",")
    if len(backbones) > 1:
        # One fresh process per backbone, so each peak RSS is its own.
        for backbone in backbones:
            cmd = [sys.executable, __file__, "--minutes", str(args.minutes)]
            subprocess.run([*cmd, "--threads", str(args.threads), "--backbones", backbone])
        return

    tmp = Path(tempfile.mkdtemp(prefix="sersite-bench-"))
    os.environ.update(
        SERSITE_VAR_DIR=str(tmp),
        MEDIA_ROOT=str(tmp / "media"),
        DATABASE_URL=f"sqlite:///{tmp / 'bench.sqlite3'}",
        REDIS_KEY_PREFIX=f"sersite-bench-{os.getpid()}",
        DJANGO_SETTINGS_MODULE="sersite.settings",
    )
    import django

    django.setup()
    import torch
    from django.core.files import File
    from django.core.management import call_command

    from emotions.models import EmotionModel, Job, Lecture
    from emotions.ser import device, networks
    from emotions.services import jobs, lectures

    torch.set_num_threads(args.threads)
    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user("bench")
    audio_path = tmp / "lecture.flac"
    t0 = time.perf_counter()
    duration = make_lecture(audio_path, args.minutes)
    made_in = time.perf_counter() - t0
    print(f"reference: {duration:.0f} s of lecture audio (generated in {made_in:.1f} s)")
    print(f"device: {device.choose_device()}, torch threads: {torch.get_num_threads()}")

    first_publish: list[float] = []
    original_publish = jobs.Reporter.publish

    def timed_publish(self, event, data):
        if event == "segments" and not first_publish:
            first_publish.append(time.perf_counter())
        return original_publish(self, event, data)

    jobs.Reporter.publish = timed_publish
    for backbone in args.backbones.split(","):
        net = networks.build_network(backbone, 4, pretrained=False, seed=0)
        weights = tmp / f"{backbone}.pt"
        networks.save_checkpoint(net, weights, {"labels": ["anger", "happy", "neutral", "sad"]})
        model = EmotionModel(
            owner=user,
            name=backbone,
            backbone=backbone,
            labels=["anger", "happy", "neutral", "sad"],
        )
        with open(weights, "rb") as fh:
            model.weights.save(weights.name, File(fh), save=True)
        lecture = Lecture(owner=user, title="bench", model=model)
        with open(audio_path, "rb") as fh:
            lecture.audio.save("lecture.flac", File(fh), save=True)
        job = Job.objects.create(owner=user, kind=Job.Kind.ANALYSIS, params={"lecture": lecture.pk})
        first_publish.clear()
        start = time.perf_counter()
        done = jobs.run(job.pk, lectures.analyse, worker="bench", device=str(net and "cpu"))
        elapsed = time.perf_counter() - start
        assert done.state == Job.State.SUCCEEDED, done.error
        n = lecture.segments.count()
        speech = lecture.segments.filter(is_silence=False).count()
        rtf = duration / elapsed
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"{backbone:20s} {elapsed:7.1f} s  {rtf:6.1f}x real time  "
            f"first segments after {first_publish[0] - start:5.2f} s  "
            f"{n / elapsed:6.1f} blocks/s ({speech} speech, {n - speech} silent)  "
            f"peak RSS {peak_mb:.0f} MB"
        )
        print(f"ratio[{backbone}]: {rtf / 60.0:.2f} (of the 60x real-time target)")


if __name__ == "__main__":
    main()
