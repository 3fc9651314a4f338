"""`manage.py train --dataset ID`: a training run from the terminal, with a progress bar.

The same service as the Train page and the API: the run is checked and recorded the same
way, then trained in this process instead of on a worker, and shows up on the site like any
other. Every training setting the API takes (emotions.ser.constants.TRAIN_SETTINGS) is an
option here, made from the same definition. Ctrl-C, SIGTERM or SIGHUP cancel the run's job,
so the identical run can be started again at once.
"""

import argparse
import contextlib
import signal
import threading
from collections.abc import Iterator

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from emotions.models import Dataset, Job, NoiseProfile, TrainingRun
from emotions.ser.constants import BACKBONES, DEFAULT_BACKBONE, DEFAULT_SNRS_DB, TRAIN_SETTINGS
from emotions.services import jobs, training
from emotions.services.errors import ServiceError

INTERRUPTED = "Interrupted in the terminal."


class _Stop:
    """A stop asked for by a signal: the job's own cancel path ends the run at its next
    check (within a batch), never in the middle of a database write or an event send."""

    requested = ""  # the signal's name once one arrived


class _BarReporter:
    """Forwards to the job's Reporter and moves a tqdm bar (percent of the whole run); a
    signal's stop request counts as the job's cancel."""

    def __init__(self, reporter: jobs.Reporter, bar: tqdm, stop: _Stop) -> None:
        self.reporter, self.bar, self.stop = reporter, bar, stop

    def progress(self, fraction: float, stage: str = "", message: str = "", **data) -> None:
        self.bar.set_description(stage or "training")
        self.bar.set_postfix_str(message[:70], refresh=False)
        self.bar.update(round(100 * fraction, 1) - self.bar.n)
        self.reporter.progress(fraction, stage, message, **data)

    def publish(self, event: str, data: dict) -> None:
        if event == "epoch":
            fold = f"fold {data['fold']} " if data.get("fold", 1) > 1 else ""
            held_out = data.get("val_accuracy")
            self.bar.write(
                f"{fold}epoch {data['epoch']}: loss {data['loss']:.4f}, accuracy "
                f"{data['accuracy']:.1%}"
                + (f", held-out accuracy {held_out:.1%}" if held_out is not None else "")
            )
        self.reporter.publish(event, data)

    def check_cancel(self) -> None:
        if self.stop.requested:
            raise jobs.JobCancelled()
        self.reporter.check_cancel()

    def cancelled(self) -> bool:
        return bool(self.stop.requested) or self.reporter.cancelled()


class Command(BaseCommand):
    help = "Train a model on a dataset (clean or noise mix-up) and print the method's table."

    def add_arguments(self, parser):
        parser.add_argument("--dataset", type=int, required=True, help="dataset id")
        parser.add_argument("--preset", choices=TrainingRun.Preset.values, default="mixup")
        parser.add_argument("--protocol", choices=TrainingRun.Protocol.values, default="speaker")
        parser.add_argument("--backbone", choices=BACKBONES, default=DEFAULT_BACKBONE)
        parser.add_argument(
            "--noises", type=int, nargs="*", default=[], help="noise ids, split automatically"
        )
        parser.add_argument("--train-noises", type=int, nargs="*", default=[])
        parser.add_argument("--test-noises", type=int, nargs="*", default=[])
        parser.add_argument("--snrs", type=float, nargs="*", default=list(DEFAULT_SNRS_DB))
        settings = parser.add_argument_group("training settings (as the API's config)")
        for name, setting in TRAIN_SETTINGS.items():
            _add_setting(settings, name, setting)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--kfold", type=int, help="k-fold cross-validation (2-10)")
        parser.add_argument("--name", default="")
        parser.add_argument("--user", help="who owns the run and model (default: dataset owner)")

    def handle(self, *args, **options):
        dataset = Dataset.objects.filter(pk=options["dataset"]).first()
        if dataset is None:
            raise CommandError(f"There is no dataset {options['dataset']}.")
        owner = self._owner(options["user"], dataset)
        config = {key: options[key] for key in TRAIN_SETTINGS if options.get(key) is not None}
        try:
            run = training.create_training_run(
                owner,
                dataset,
                preset=options["preset"],
                protocol=options["protocol"],
                noises=self._noises(options["noises"]),
                train_noises=self._noises(options["train_noises"]),
                test_noises=self._noises(options["test_noises"]),
                snrs=options["snrs"],
                backbone=options["backbone"],
                config=config,
                seed=options["seed"],
                kfold=options["kfold"],
                name=options["name"],
                dispatch=False,
            )
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"Training run #{run.pk} ({run.get_preset_display()}) on {dataset}.")
        self.stdout.write(
            "Training noises: "
            + (", ".join(f"#{n.pk} {n.name}" for n in run.train_noises.order_by("pk")) or "none")
            + "; test noises (never in training): "
            + (", ".join(f"#{n.pk} {n.name}" for n in run.test_noises.order_by("pk")) or "none")
        )
        job = self._run(run)
        if job.state != Job.State.SUCCEEDED:
            raise CommandError(f"Training {job.state}: {job.error or job.message}")
        run.refresh_from_db()
        self._report(run)

    def _run(self, run: TrainingRun) -> Job:
        stop = _Stop()
        try:
            with _stop_signals(stop):
                bar_format = "{l_bar}{bar}| {n:.0f}% {postfix}"
                with tqdm(total=100, unit="%", bar_format=bar_format) as bar:

                    def body(job, reporter):
                        return training.run_training(job, _BarReporter(reporter, bar, stop))

                    jobs.run(run.job_id, body, worker="manage.py train", device=_device_label())
        except KeyboardInterrupt:
            stop.requested = stop.requested or "SIGINT"
        if stop.requested:
            # Queued or running, the job ends cancelled: nothing blocks the identical rerun.
            job = jobs.mark_cancelled(run.job_id, INTERRUPTED)
            if job.state == Job.State.CANCELLED:
                Job.objects.filter(pk=job.pk).update(message=INTERRUPTED)
                raise CommandError(
                    f"Interrupted ({stop.requested}): the run was cancelled, no model saved."
                )
        return Job.objects.get(pk=run.job_id)

    def _report(self, run: TrainingRun) -> None:
        from emotions.ser.metrics import RESULTS_COLUMNS

        model = run.model
        self.stdout.write(f"Model: {model} — {model.provenance}")
        if model.synthetic_speech:
            self.stdout.write("Trained on synthetic speech (demonstration).")
        split = run.split
        self.stdout.write(
            f"Split: {run.get_protocol_display()}, seed {run.seed}, "
            f"{split['n_train_utterances']} train / {split['n_test_utterances']} test utterances, "
            f"fingerprint {split['fingerprint'][:12]}"
        )
        cache = split["blocks_cache"]
        self.stdout.write(
            f"Blocks: {cache['generated']} sets generated ({cache['blocks_generated']} blocks in "
            f"{cache['seconds_generating']:.1f} s), {cache['reused']} read from the cache"
        )
        widths = [max(len(c), 8) for c in RESULTS_COLUMNS]
        self.stdout.write(_table_line(RESULTS_COLUMNS, widths))
        for row in training.results_rows(run.metrics):
            self.stdout.write(_table_line(row, widths))
        if run.metrics.get("kfold"):
            self.stdout.write(training.results_csv(run).split("\n", 1)[1])

    def _owner(self, username: str | None, dataset: Dataset):
        if not username:
            return dataset.owner
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"There is no user {username!r}.")
        return user

    def _noises(self, ids: list[int]) -> list[NoiseProfile]:
        found = {n.pk: n for n in NoiseProfile.objects.filter(pk__in=ids)}
        missing = [str(i) for i in ids if i not in found]
        if missing:
            raise CommandError(f"There is no noise recording {', '.join(missing)}.")
        return [found[i] for i in ids]


def _add_setting(parser, name: str, setting) -> None:
    """One option per training setting: --epochs, --class-weighting, --no-pretrained, ..."""
    flag = "--" + name.replace("_", "-")
    default = setting.default
    if setting.kind is bool:
        on_off = "on" if default else "off"
        parser.add_argument(flag, action=argparse.BooleanOptionalAction, help=f"default {on_off}")
    elif setting.kind is list:
        parser.add_argument(flag, metavar="A,B", help="comma-separated names (default: none)")
    elif setting.choices:
        parser.add_argument(flag, choices=setting.choices, help=f"default {default}")
    elif setting.kind in (int, float):
        bounds = f"{setting.low:g} to {setting.high:g}"
        parser.add_argument(flag, type=setting.kind, help=f"{bounds}, default {default:g}")
    else:
        parser.add_argument(flag, help=f"default {default!r}")


@contextlib.contextmanager
def _stop_signals(stop: _Stop) -> Iterator[None]:
    """Ctrl-C (SIGINT), SIGTERM and SIGHUP ask the run to stop: its job is cancelled at its
    next check rather than left running until the reaper fails it; a second signal stops at
    once. SIGINT is set here too: a process started in the background inherits it ignored,
    and Python then leaves it so."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set in the main thread
        return

    def interrupt(signum, frame):
        name = signal.Signals(signum).name
        if stop.requested:
            raise KeyboardInterrupt(name)
        stop.requested = name
        tqdm.write(f"{name}: stopping at the next step (again to stop at once)…")

    stops = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, interrupt) for sig in stops}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _table_line(cells, widths: list[int]) -> str:
    first, *rest = cells
    cells = [c.rjust(w) for c, w in zip(rest, widths[1:], strict=True)]
    return "  ".join([first.ljust(widths[0]), *cells])


def _device_label() -> str:
    from emotions.ser.device import describe_device

    return describe_device()
