"""`manage.py demo`: a full report on a fresh install within minutes, offline.

Builds a small labelled set of synthetic emotional speech (espeak-ng, prosody per
emotion), imports the real environmental noise pack (synthetic noise where the
package tool is missing), trains a noise mix-up model from the packaged ImageNet
MobileNetV2 weights, makes it the active model, and analyses a sample lecture.
Everything it makes says "synthetic speech" wherever its results are shown.
"""

import tempfile
import time
from pathlib import Path

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from emotions.models import Dataset, EmotionModel, Job, NoiseProfile, TrainingRun, Visibility
from emotions.services import datasets, jobs, lectures
from emotions.services.errors import ServiceError
from emotions.services.files import local_copy
from emotions.services.noise import import_noise_pack

DATASET_NAME = "Synthetic emotional speech (demonstration)"


class Command(BaseCommand):
    help = "Build synthetic emotional speech, train a noise-robust model, analyse a lecture."

    def add_arguments(self, parser):
        parser.add_argument("--owner", help="user who owns what the demo makes (default: admin)")
        parser.add_argument("--quick", action="store_true", help="smaller set, smaller images")
        parser.add_argument("--no-noise-pack", action="store_true", help="synthetic noise only")

    def handle(self, *args, **options):
        from emotions.ser import audio, synthetic

        started = time.monotonic()
        owner = self._owner(options["owner"])
        quick = options["quick"]
        work = Path(tempfile.mkdtemp(prefix="demo-", dir=settings.VAR_DIR))
        self.stdout.write("1/5 Speaking the sentences with espeak-ng …")
        try:
            items = synthetic.build_corpus(
                work / "corpus",
                # Every voice even in quick mode: with three training voices a held-out voice's
                # own pitch and rate were mistaken for emotion (every model, the baselines
                # included, gave one class to all its blocks); more voices, fewer sentences.
                voices=synthetic.VOICES,
                sentences=synthetic.SENTENCES[:4] if quick else synthetic.SENTENCES,
            )
        except synthetic.SpeechSynthesisError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"    {len(items)} utterances, 4 emotions, synthetic speech")

        self.stdout.write("2/5 Importing them as a dataset …")
        # Run again, the demo reuses its dataset (and so its cached blocks).
        dataset = (
            Dataset.objects.filter(owner=owner, name=DATASET_NAME, synthetic=True)
            .exclude(utterances=None)
            .first()
        ) or self._import(owner, work / "corpus")

        self.stdout.write("3/5 Importing environmental noise …")
        noises = self._noises(owner, packages=[] if options["no_noise_pack"] else None)

        self.stdout.write("4/5 Training a noise mix-up model (MobileNetV2, ImageNet weights) …")
        # The default recipe (emotions/ser/constants.py TRAIN_SETTINGS), nothing tuned here:
        # what the demo shows is what a user's first run gets.
        call_command(
            "train", dataset=dataset.pk, preset="mixup", protocol="speaker",
            backbone="mobilenet_v2", noises=[n.pk for n in noises], seed=0,
            name="Demo (synthetic speech)", user=owner.get_username(), stdout=self.stdout,
        )  # fmt: skip
        run = TrainingRun.objects.filter(dataset=dataset).latest("created_at")
        self._print_figures(run)
        model: EmotionModel = run.model
        EmotionModel.objects.filter(is_active=True).update(is_active=False)
        model.is_active, model.visibility = True, Visibility.SHARED
        model.save(update_fields=["is_active", "visibility"])

        self.stdout.write("5/5 Analysing a sample lecture (speech with pauses, in noise) …")
        noise = None
        if noises:
            with local_copy(noises[0].audio) as path:
                noise = audio.decode(path)
        chosen = items[:: max(len(items) // 24, 1)]
        signal = synthetic.sample_lecture(chosen, noise, snr_db=20.0, seed=1)
        wav = work / "sample-lecture.wav"
        audio.write_wav(wav, signal.astype(np.float32))
        lecture = lectures.create_lecture(
            owner, SimpleUploadedFile(wav.name, wav.read_bytes(), "audio/wav"),
            title="Sample lecture (synthetic speech)", course="Demonstration", model=model,
            dispatch=False,
        )  # fmt: skip
        job = jobs.run(lecture.job_id, lectures.analyse, worker="manage.py demo", device="")
        if job.state != Job.State.SUCCEEDED:
            raise CommandError(f"The analysis {job.state}: {job.error}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Done in {time.monotonic() - started:.0f} s. Report: /lectures/{lecture.pk}/   "
                f"Training run: /train/runs/{run.pk}/   (all of it trained on synthetic speech)"
            )
        )

    def _print_figures(self, run: TrainingRun) -> None:
        """The network's held-out figures beside the classical baselines', per test set."""
        tests = [
            name for name, m in (run.metrics or {}).items() if isinstance(m, dict) and "f1" in m
        ]
        if not tests:
            return
        self.stdout.write("    Held-out voices (synthetic speech), weighted F1 / accuracy in %:")
        self.stdout.write("    " + f"{'':<42}" + "".join(f"{name:>14}" for name in tests))
        rows = [("network (MobileNetV2, noise mix-up)", run.metrics)]
        rows += [
            (b.get("name", kind), b.get("metrics", {})) for kind, b in (run.baselines or {}).items()
        ]
        for name, metrics in rows:
            cells = "".join(
                f"{100 * metrics[t]['f1']:>7.1f} /{100 * metrics[t]['accuracy']:>5.1f}"
                if t in metrics else f"{'-':>14}"
                for t in tests
            )  # fmt: skip
            self.stdout.write(f"    {name[:42]:<42}{cells}")

    def _owner(self, username: str | None):
        User = get_user_model()
        user = (
            User.objects.filter(username=username).first()
            if username
            else User.objects.filter(is_superuser=True).order_by("pk").first()
        )
        if user is None:
            raise CommandError("No such user: run `make run` once (it creates 'admin') or --owner.")
        return user

    def _import(self, owner, folder: Path) -> Dataset:
        try:
            dataset = datasets.start_import(
                owner, directory=str(folder), layout="manifest", name=DATASET_NAME,
                visibility=Visibility.SHARED, dispatch=False,
                description="Sentences spoken by espeak-ng with prosody per emotion. "
                "Synthetic speech: for demonstration only.",
            )  # fmt: skip
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        Dataset.objects.filter(pk=dataset.pk).update(synthetic=True)
        job = jobs.run(
            dataset.import_job_id, datasets.run_import, worker="manage.py demo", device=""
        )
        if job.state != Job.State.SUCCEEDED:
            raise CommandError(f"The import {job.state}: {job.error}")
        return Dataset.objects.get(pk=dataset.pk)

    def _noises(self, owner, packages) -> list[NoiseProfile]:
        try:
            import_noise_pack(owner, packages=packages, progress=lambda f, m: None)
        except ServiceError as exc:
            self.stderr.write(f"    noise pack unavailable ({exc.message}); using synthetic noise")
        noises = list(NoiseProfile.objects.filter(visibility=Visibility.SHARED).order_by("pk"))
        real = [n for n in noises if not n.synthetic]
        self.stdout.write(
            f"    {len(real)} recorded and {len(noises) - len(real)} synthetic noises"
        )
        return noises
