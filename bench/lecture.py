"""End-to-end lecture analysis on this machine: decode → 1 s blocks → silence and voice
activity → spectrograms → model → segments stored and published.

Runs the real job body (``emotions.services.lectures.analyse``, as a worker runs it) against
a throwaway SQLite database and media folder, on two recordings a user would send, both of
synthetic speech (espeak-ng, several voices and emotions, so the voice-activity detector
passes it on to the model):

- **continuous**: speech with only the short gaps between sentences;
- **lecture**: the same with a 3 s pause of quiet room tone every 20 s.

Each (backbone, runtime, recording) runs in a fresh process (its peak RSS is its own), with
the product's default thread settings, and the runs are interleaved round by round (A, B,
C, A, B, C, ...) so that load drift hits every side alike. Runtimes: ``onnx`` (the CPU
default: the model exported to ONNX beforehand, int8 when it agrees with PyTorch, run by
ONNX Runtime without importing torch) and ``torch`` (the PyTorch reference on the CPU). The
export is a one-time cost paid after training; it is timed and printed separately.

Prints per run: seconds, real-time factor, CPU seconds (all threads: the figure least moved
by other people's load on a shared machine), time to the first published segments, peak RSS;
then per (backbone, runtime, recording) the median, and ``ratio[...]`` = real-time factor
over the 60× target. The temporary folder is removed, also on error or Ctrl-C.

    .venv/bin/python bench/lecture.py                                # 10 min, 2 rounds
    .venv/bin/python bench/lecture.py --minutes 2 --rounds 1 --backbones mobilenet_v2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LABELS = ["anger", "happy", "neutral", "sad"]
TARGET_RTF = 60.0
PAUSE_EVERY_S, PAUSE_S = 20, 3


def _django(tmp: Path) -> None:
    os.environ.update(
        SERSITE_VAR_DIR=str(tmp),
        MEDIA_ROOT=str(tmp / "media"),
        DATABASE_URL=f"sqlite:///{tmp / f'bench-{os.getpid()}.sqlite3'}",
        REDIS_KEY_PREFIX=f"sersite-bench-{os.getpid()}",
        DJANGO_SETTINGS_MODULE="sersite.settings",
    )
    import django

    django.setup()


def _utterances(tmp: Path) -> list[tuple[object, str]]:
    """(signal, emotion) for every voice and sentence of the synthetic corpus."""
    from emotions.ser import audio, synthetic

    emotions = list(synthetic.EMOTION_PROSODY)
    out = []
    for i, voice in enumerate(synthetic.VOICES):
        for j, text in enumerate(synthetic.SENTENCES):
            emotion = emotions[(i + j) % len(emotions)]
            wav = synthetic.synthesize(text, emotion, voice, tmp / f"u{i}_{j}.wav")
            out.append((audio.decode(wav), emotion))
            wav.unlink()
    return out


def make_recordings(tmp: Path, minutes: float, pool: list, seed: int = 0) -> dict[str, Path]:
    """continuous.flac and lecture.flac, ``minutes`` each, from the utterances in ``pool``."""
    import numpy as np
    import soundfile as sf

    from emotions.ser.constants import SAMPLE_RATE

    rng = np.random.default_rng(seed)
    parts, n = [], 0
    while n < minutes * 60 * SAMPLE_RATE:
        x = pool[rng.integers(len(pool))][0]
        gap = np.zeros(int(rng.uniform(0.15, 0.4) * SAMPLE_RATE), np.float32)
        parts += [x, gap]
        n += len(x) + len(gap)
    seconds = int(minutes * 60)
    continuous = np.concatenate(parts)[: seconds * SAMPLE_RATE]
    lecture = continuous.copy()
    room = (0.001 * rng.standard_normal(PAUSE_S * SAMPLE_RATE)).astype(np.float32)  # -60 dBFS
    for start in range(PAUSE_EVERY_S, seconds - PAUSE_S, PAUSE_EVERY_S):
        lecture[start * SAMPLE_RATE : (start + PAUSE_S) * SAMPLE_RATE] = room
    out = {}
    for name, x in (("continuous", continuous), ("lecture", lecture)):
        out[name] = tmp / f"{name}.flac"
        sf.write(out[name], x, SAMPLE_RATE, format="FLAC")
    return out


def export_models(tmp: Path, backbones: list[str], pool: list) -> dict[str, dict]:
    """Each backbone as training leaves it: its head fitted briefly on the utterances'
    emotions (so its answers are as decisive as a trained model's, which is what int8 must
    agree with), saved as a checkpoint, then exported calibrated on those training blocks
    and checked on blocks of other utterances."""
    import numpy as np
    import torch

    from emotions.ser import audio, networks, onnx_runtime, spectrogram_numpy
    from emotions.services.inference import export_dir_for

    emotions = sorted({e for _, e in pool})
    blocks, labels = [], []
    for x, emotion in pool:
        b = audio.split_blocks(x)
        b = b[~audio.silence_mask(b)]
        blocks.append(b)
        labels += [emotions.index(emotion)] * len(b)
    images = spectrogram_numpy.blocks_to_model_input(np.concatenate(blocks), 256)
    targets = torch.tensor(labels)
    order = np.random.default_rng(0).permutation(len(images))
    train, held = order[: int(0.75 * len(order))], order[int(0.75 * len(order)) :]
    cards = {}
    for backbone in backbones:
        net = networks.build_network(
            backbone, len(LABELS), pretrained=backbone == "mobilenet_v2", seed=0
        )
        with torch.no_grad():
            features = net.trunk(torch.from_numpy(images[train]))
        optimiser = torch.optim.Adam(net.head.parameters(), lr=1e-3)
        net.train()
        for _ in range(40):
            optimiser.zero_grad()
            loss = torch.nn.functional.cross_entropy(net.head(features), targets[train])
            loss.backward()
            optimiser.step()
        net.eval()
        checkpoint = tmp / f"{backbone}.pt"
        networks.save_checkpoint(net, checkpoint, {"labels": LABELS})
        start = time.perf_counter()
        card = onnx_runtime.export_for_inference(
            net, images[train], export_dir_for(checkpoint), heldout_images=images[held]
        )
        card["export_s"] = round(time.perf_counter() - start, 1)
        cards[backbone] = card
    return cards


def _peak_rss_mb() -> float:
    # VmHWM belongs to this process image; getrusage's ru_maxrss would carry the parent's
    # peak across fork and exec
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(tmp: Path, backbone: str, runtime: str, recording: Path) -> dict:
    """One analysis through the job body, in this (fresh) process."""
    from django.core.files import File
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model

    from emotions.models import EmotionModel, Job, Lecture, Segment
    from emotions.services import jobs, lectures

    if runtime == "torch":  # the PyTorch reference on the CPU instead of the export

        def torch_classifier(model, recording):
            from emotions.ser.inference import Classifier

            return Classifier.from_checkpoint(tmp / f"{backbone}.pt", device="cpu")

        lectures._classifier = torch_classifier
    user = get_user_model().objects.create_user("bench")
    model = EmotionModel(owner=user, name=backbone, backbone=backbone, labels=LABELS)
    with open(tmp / f"{backbone}.pt", "rb") as fh:
        model.weights.save(f"{backbone}.pt", File(fh), save=True)
    lecture = Lecture(owner=user, title="bench", model=model)
    with open(recording, "rb") as fh:
        lecture.audio.save(recording.name, File(fh), save=True)
    job = Job.objects.create(owner=user, kind=Job.Kind.ANALYSIS, params={"lecture": lecture.pk})

    first: list[float] = []
    publish = jobs.Reporter.publish

    def timed_publish(self, event, data):
        if event == "segments" and not first:
            first.append(time.perf_counter())
        return publish(self, event, data)

    jobs.Reporter.publish = timed_publish
    cpu_before = time.process_time()
    start = time.perf_counter()
    done = jobs.run(job.pk, lectures.analyse, worker="bench", device="cpu")
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_before
    if done.state != Job.State.SUCCEEDED:
        raise SystemExit(f"analysis failed: {done.error}")
    lecture.refresh_from_db()
    segments = Segment.objects.filter(lecture=lecture)
    return {
        "seconds": elapsed,
        "cpu_s": cpu,  # all threads: less sensitive to other people's load than wall time
        "duration_s": lecture.duration_s,
        "first_s": first[0] - start if first else None,
        "classified": segments.filter(is_silence=False).count(),
        "segments": segments.count(),
        "runtime": lecture.summary.get("runtime", ""),
        "peak_rss_mb": _peak_rss_mb(),
        "torch_imported": "torch" in sys.modules,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--backbones", default="mobilenet_v2,mobilenet_v3_small,alexnet")
    parser.add_argument("--runtimes", default="onnx,torch")
    parser.add_argument("--recordings", default="continuous,lecture")
    parser.add_argument("--child", nargs=4, metavar=("TMP", "BACKBONE", "RUNTIME", "FILE"))
    args = parser.parse_args()

    if args.child:  # one measured analysis in a fresh process
        tmp, backbone, runtime, recording = args.child
        _django(Path(tmp))
        print("RESULT " + json.dumps(run_one(Path(tmp), backbone, runtime, Path(recording))))
        return

    tmp = Path(tempfile.mkdtemp(prefix="sersite-bench-lecture-"))
    try:
        backbones = args.backbones.split(",")
        runtimes = args.runtimes.split(",")
        start = time.perf_counter()
        _django(tmp)
        pool = _utterances(tmp)
        files = make_recordings(tmp, args.minutes, pool)
        made = time.perf_counter() - start
        print(f"recordings: {args.minutes:g} min each, {len(pool)} utterances ({made:.0f} s)")
        for backbone, card in export_models(tmp, backbones, pool).items():
            rejected = card.get("int8_rejected")
            print(
                f"export {backbone}: {card['runtime']} in {card['export_s']} s, int8 agreement "
                f"{card.get('int8_agreement')}" + (f" ({rejected})" if rejected else "")
            )
        sides = [
            (b, r, rec) for b in backbones for r in runtimes for rec in args.recordings.split(",")
        ]
        results: dict[tuple[str, str, str], list[dict]] = {side: [] for side in sides}
        for round_ in range(args.rounds):
            for side in sides:  # interleaved: every side once per round
                backbone, runtime, rec = side
                cmd = [sys.executable, __file__, "--child", str(tmp), backbone, runtime]
                out = subprocess.run(
                    [*cmd, str(files[rec])], capture_output=True, text=True, timeout=3600
                )
                line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
                if out.returncode != 0 or not line:
                    print(f"{side}: failed\n{out.stderr[-2000:]}")
                    continue
                r = json.loads(line[-1][len("RESULT ") :])
                results[side].append(r)
                print(
                    f"round {round_ + 1} {backbone:18s} {r['runtime']:18s} {rec:10s} "
                    f"{r['seconds']:6.1f} s {r['duration_s'] / r['seconds']:6.1f}x real time "
                    f"({r['cpu_s']:.1f} CPU-s), "
                    f"first segments {r['first_s']:.2f} s, peak RSS {r['peak_rss_mb']:.0f} MB, "
                    f"{r['classified']}/{r['segments']} blocks classified"
                    + (", torch imported" if r["torch_imported"] else "")
                )
        print("median over rounds:")
        for side, runs in results.items():
            if not runs:
                continue
            backbone, runtime, rec = side
            rtf = statistics.median(r["duration_s"] / r["seconds"] for r in runs)
            rss = max(r["peak_rss_mb"] for r in runs)
            per_cpu = statistics.median(r["duration_s"] / r["cpu_s"] for r in runs)
            key = f"{backbone},{runtime},{rec}"
            print(f"rtf[{key}]: {rtf:.1f}")
            print(f"audio_s_per_cpu_s[{key}]: {per_cpu:.1f}")
            print(f"peak_rss_mb[{key}]: {rss:.0f}")
            print(f"ratio[{key}]: {rtf / TARGET_RTF:.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
