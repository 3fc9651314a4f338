"""`manage.py analyse FILE`: the lecture analysis from the terminal, with a progress bar."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from emotions.models import EmotionModel


class Command(BaseCommand):
    help = "Classify each second of a recording with a trained model; print a summary, write CSV."
    # The system checks import every URL and view (DRF, the API schema): seconds before a
    # missing file could be reported, and nothing this command uses.
    requires_system_checks: list = []

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--model", type=int, help="model id (default: the active model)")
        parser.add_argument("--csv", type=Path, help="where to write segments (default FILE.csv)")

    def handle(self, *args, **options):
        path: Path = options["file"]
        if not path.is_file():  # say so before importing the audio and model code
            raise CommandError(f"{path} is not a file.")
        from django.conf import settings

        from emotions.ser import audio
        from emotions.ser.inference import classify_file
        from emotions.ser.report import summarize, write_segments_csv
        from emotions.services.inference import classifier_for

        models = EmotionModel.objects.all()
        model = (
            models.filter(pk=options["model"]).first()
            if options["model"]
            else models.filter(is_active=True).first()
        )
        if model is None:
            raise CommandError("No such model: train one first, or mark one active in the admin.")
        try:
            total = audio.probe(path).duration_s
            classifier = classifier_for(model, path)
            segments = []
            with tqdm(total=round(total, 1), unit="s", desc=path.name) as bar:
                for batch, seconds in classify_file(path, classifier, vad=settings.ANALYSIS_VAD):
                    segments.extend(batch)
                    bar.update(round(seconds, 1) - bar.n)
        except audio.AudioDecodeError as exc:
            raise CommandError(str(exc)) from exc
        out = options["csv"] or path.with_suffix(path.suffix + ".csv")
        with open(out, "w", newline="", encoding="utf-8") as fh:
            write_segments_csv(fh, segments, classifier.labels)
        summary = summarize(segments, classifier.labels)
        self.stdout.write(f"Model: {model} — {model.provenance or 'provenance unknown'}")
        self.stdout.write(f"Runtime: {classifier.runtime}")
        self.stdout.write(
            f"{summary['duration_s']:.1f} s, {summary['speech_s']:.0f} s speech, "
            f"{summary['silence_s']:.0f} s silence, {summary.get('no_speech_s', 0):.0f} s without "
            f"speech; dominant: {summary['dominant'] or '—'}"
        )
        for label, share in summary["shares"].items():
            self.stdout.write(f"  {label:12s} {100 * share:5.1f} %")
        self.stdout.write(f"Segments written to {out}")
