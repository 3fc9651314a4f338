"""Training pages: the Train form, a run's live page, two runs side by side, the models."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from emotions import params, selectors
from emotions.models import Dataset, EmotionModel, Job, NoiseProfile, TrainingRun
from emotions.ser.constants import DEFAULT_BACKBONE, DEFAULT_SNRS_DB
from emotions.services import training
from emotions.services.errors import ServiceError


def _run_or_404(user, run_id: int) -> TrainingRun:
    try:
        return selectors.training_runs_for(user).get(pk=run_id)
    except TrainingRun.DoesNotExist:
        raise Http404("No such training run.") from None


# ---------------------------------------------------------------- the Train page


@login_required
def train(request):
    user = request.user
    context = {
        "datasets": selectors.ready_datasets_for(user).annotate(
            n_utterances=Count("utterances", filter=Q(utterances__excluded=False))
        ),
        "noises": selectors.noise_profiles_for(user),
        "backbones": training.backbone_choices(),
        "protocols": TrainingRun.Protocol.choices,
        "runs": selectors.training_runs_for(user)[:50],
        "leak_warning": training.LEAK_WARNING,
        "form": _defaults(),
    }
    if request.method != "POST":
        return render(request, "emotions/train.html", context)
    form = _posted(request.POST)
    defaults = context["form"]
    context["advanced_open"] = any(form[k] != defaults[k] for k in [*ADVANCED, *HELD_OUT, "seed"])
    try:
        arguments = _service_arguments(user, form)
        if _one_list_to_split(arguments):
            # One list is never split silently: show which noises train and which test, in
            # the two lists, and start only when the user presses Train again.
            train_list, test_list = training.split_noises(
                arguments["preset"], [], arguments["train_noises"], arguments["test_noises"]
            )
            form["train_noises"] = [str(n.pk) for n in train_list]
            form["test_noises"] = [str(n.pk) for n in test_list]
            messages.info(request, _split_message(arguments["preset"], train_list, test_list))
            return render(request, "emotions/train.html", {**context, "form": form})
        run = training.create_training_run(user, **arguments)
    except ServiceError as exc:
        messages.error(request, _readable(exc.message))
        status = exc.status_code if exc.status_code != 404 else 400
        return render(request, "emotions/train.html", {**context, "form": form}, status=status)
    messages.success(request, f"Training run #{run.pk} is queued.")
    return redirect("training-run", run_id=run.pk)


# The Advanced settings of the Train form: the run's config keys, with their labels.
ADVANCED = {
    "epochs": "Epochs",
    "batch_size": "Batch size",
    "lr": "Learning rate",
    "image_size": "Image size",
}


# Who or what the test set holds out: text settings of the Advanced section.
HELD_OUT = {
    "test_speakers": "Held-out speakers",
    "test_group": "Held-out session",
}


def _one_list_to_split(arguments: dict) -> bool:
    """Noises chosen in one list only, more than one: the service would split them."""
    train_list, test_list = arguments["train_noises"], arguments["test_noises"]
    return bool(train_list) != bool(test_list) and len(train_list or test_list) > 1


def _split_message(preset: str, train_list: list, test_list: list) -> str:
    def names(noises: list) -> str:
        return ", ".join(n.name for n in noises) or "none"

    clean = " (clean speech only: nothing is mixed into training)" if preset == "clean" else ""
    return (
        "Your noises were split into training and test noises, every second one kept for "
        f"testing: training {names(train_list)}{clean}; testing {names(test_list)}. Test "
        "noises are never used in training. Check the two lists below and press the Train "
        "button again to start."
    )


def _readable(message: str) -> str:
    """A service message about a setting, with the form's label instead of the config key."""
    for key, label in {**ADVANCED, **HELD_OUT, "seed": "Seed"}.items():
        if message.startswith(f"{key} "):
            return label + message[len(key) :]
    return message


def _defaults() -> dict:
    return {
        "dataset": "",
        "backbone": DEFAULT_BACKBONE,
        "protocol": TrainingRun.Protocol.SPEAKER,
        "train_noises": [],
        "test_noises": [],
        "snrs": ", ".join(f"{s:g}" for s in DEFAULT_SNRS_DB),
        **{key: f"{training.CONFIG_DEFAULTS[key]:g}" for key in ADVANCED},
        **{key: "" for key in HELD_OUT},
        "seed": "0",
        "kfold": "",
        "name": "",
    }


def _posted(post) -> dict:
    form = {key: post.get(key, "").strip() for key in _defaults()}
    form["train_noises"] = post.getlist("train_noises")
    form["test_noises"] = post.getlist("test_noises")
    form["preset"] = post.get("preset", "")
    return form


def _service_arguments(user, form: dict) -> dict:
    """The Train form's fields as arguments of create_training_run (refusals as messages)."""
    try:
        dataset = selectors.datasets_for(user).get(pk=int(form["dataset"]))
    except (ValueError, Dataset.DoesNotExist):
        raise ServiceError("Choose a dataset to train on.") from None
    snrs = [s for s in form["snrs"].replace(";", ",").split(",") if s.strip()]
    return {
        "dataset": dataset,
        "preset": form["preset"],
        "protocol": form["protocol"],
        "backbone": form["backbone"],
        "train_noises": _noise_choices(user, form["train_noises"]),
        "test_noises": _noise_choices(user, form["test_noises"]),
        "snrs": [s.strip() for s in snrs],
        "config": {key: form[key] for key in [*ADVANCED, *HELD_OUT] if form[key]},
        "seed": form["seed"] or 0,
        "kfold": form["kfold"] or None,
        "name": form["name"],
    }


def _noise_choices(user, ids: list[str]) -> list[NoiseProfile]:
    wanted = {int(i) for i in ids if i.isdigit()}
    found = list(selectors.noise_profiles_for(user).filter(pk__in=wanted))
    if len(found) != len(wanted):
        raise ServiceError("One of the chosen noise recordings no longer exists.")
    return found


# ---------------------------------------------------------------- a run


@login_required
def run_detail(request, run_id: int):
    run = _run_or_404(request.user, run_id)
    context = {
        "run": run,
        "backbone": run.config.get("backbone", DEFAULT_BACKBONE),
        "pretrained_available": training.weights_available(
            run.config.get("backbone", DEFAULT_BACKBONE)
        ),
        "train_noises": run.train_noises.order_by("pk"),
        "test_noises": run.test_noises.order_by("pk"),
        "leak_warning": training.LEAK_WARNING,
        "run_warnings": training.run_warnings(run),
        **_results(run),
    }
    return render(request, "emotions/run_detail.html", context)


def _results(run: TrainingRun) -> dict:
    """Table rows, k-fold rows, baselines and confusion matrices of a finished run (else
    empty)."""
    if not run.metrics:
        return {"table": [], "kfold_rows": [], "matrices": []}
    from emotions.ser.metrics import RESULTS_COLUMNS

    return {
        "columns": RESULTS_COLUMNS,
        "table": training.results_rows(run.metrics),
        "baselines": _baselines(run),
        "baseline_table": training.baseline_rows(run),
        "has_predictions": bool((run.predictions or {}).get("rows")),
        "kfold_rows": _kfold_rows(run.metrics.get("kfold")),
        "kfold": run.metrics.get("kfold"),
        "matrices": [
            _matrix(name, run.metrics[name]) for name in training.test_set_order(run.metrics)
        ],
    }


def _baselines(run: TrainingRun) -> dict:
    """The network beside each baseline per test set (weighted F1, %), and the sentences."""
    comparison = training.baseline_comparison(run)
    rows = [
        {
            "test_set": s["test_set"],
            "network": f"{100 * s['network']:.1f}",
            "cells": [
                {"f1": f"{100 * b['f1']:.1f}", "beaten": b["beaten"]} for b in s["baselines"]
            ],
        }
        for s in comparison["sets"]
    ]
    return {
        "kinds": list((run.baselines or {}).values()),
        "rows": rows,
        "shortfalls": comparison["shortfalls"],
        "summary": comparison["summary"],
    }


def _kfold_rows(kfold: dict | None) -> list[list[str]]:
    if not kfold:
        return []
    rows = []
    for name in training.test_set_order(kfold["summary"]):
        values = kfold["summary"][name]
        cells = [
            f"{100 * values[k]['mean']:.1f} ± {100 * values[k]['std']:.1f}"
            for k in ("accuracy", "precision", "recall", "f1", "uar")
        ]
        rows.append([name, *cells])
    return rows


def _matrix(name: str, metrics: dict) -> dict:
    """A confusion matrix with each cell's share of its row (true class), for shading."""
    labels = metrics["labels"]
    rows = []
    for label, counts in zip(labels, metrics["confusion_matrix"], strict=True):
        total = sum(counts) or 1
        # At most 45 % opaque, so the count stays readable on the darkest cell.
        cells = [
            {"count": c, "shade": f"{0.45 * c / total:.2f}", "pct": f"{100 * c / total:.0f}"}
            for c in counts
        ]
        rows.append({"label": label, "cells": cells, "total": sum(counts)})
    short = _short(labels)
    columns = [{"label": lab, "short": cut} for lab, cut in zip(labels, short, strict=True)]
    return {
        "name": name,
        "labels": labels,
        "columns": columns,
        "rows": rows,
        "n": metrics.get("n", 0),
    }


# Column headers longer than this are cut (the full label stays in a tooltip and in the
# row headers), so a matrix of eight classes fits two to a row at 1280 px.
SHORT_LABEL = 5


def _short(labels: list[str]) -> list[str]:
    """Labels cut to SHORT_LABEL characters with a dot; kept whole where cutting would
    make two columns read alike."""
    short = [lab if len(lab) <= SHORT_LABEL else lab[: SHORT_LABEL - 1] + "." for lab in labels]
    return short if len(set(short)) == len(set(labels)) else list(labels)


# ---------------------------------------------------------------- two runs side by side


@login_required
def run_compare(request):
    finished = selectors.training_runs_for(request.user).filter(job__state=Job.State.SUCCEEDED)
    runs = list(finished[:200])
    by_id = {run.pk: run for run in runs}
    try:
        a, b = [by_id.get(params.integer(request.GET, name, minimum=1)) for name in ("a", "b")]
    except params.BadParameter as exc:
        return params.bad_request_page(request, exc.message)
    if a is None and b is None and "a" not in request.GET:
        a = next((r for r in runs if r.preset == TrainingRun.Preset.CLEAN), None)
        b = next(
            (
                r
                for r in runs
                if r.preset == TrainingRun.Preset.MIXUP
                and (a is None or r.dataset_id == a.dataset_id)
            ),
            None,
        )
    context = {"runs": runs, "a": a, "b": b, "rows": [], "notes": []}
    if a is not None and b is not None:
        context["rows"] = _comparison(a.metrics, b.metrics)
        context["notes"] = _comparison_notes(a, b)
        context["columns"] = ("Accuracy", "F1", "UAR")
        context["baselines_a"] = _baselines(a)
        context["baselines_b"] = _baselines(b)
    return render(request, "emotions/run_compare.html", context)


def _comparison(a: dict, b: dict) -> list[dict]:
    names = training.test_set_order({**a, **b})
    rows = []
    for name in names:
        cells = []
        for key in ("accuracy", "f1", "uar"):
            va = a.get(name, {}).get(key)
            vb = b.get(name, {}).get(key)
            delta = None if va is None or vb is None else 100 * (vb - va)
            cells.append(
                {
                    "a": "—" if va is None else f"{100 * va:.1f}",
                    "b": "—" if vb is None else f"{100 * vb:.1f}",
                    "delta": "" if delta is None else f"{delta:+.1f}",
                    "better": delta is not None and delta > 0,
                }
            )
        rows.append({"name": name, "cells": cells})
    return rows


def _comparison_notes(a: TrainingRun, b: TrainingRun) -> list[str]:
    notes = []
    if a.dataset_id != b.dataset_id:
        notes.append("The two runs used different datasets.")
    if a.protocol != b.protocol or a.seed != b.seed:
        notes.append("The two runs split the data differently (protocol or seed).")
    elif (a.split or {}).get("fingerprint") != (b.split or {}).get("fingerprint"):
        notes.append("The two runs held out different utterances.")
    test_a = {n["id"] for n in (a.split or {}).get("test_noises", [])}
    test_b = {n["id"] for n in (b.split or {}).get("test_noises", [])}
    if test_a != test_b:
        notes.append("The two runs were tested with different noise recordings.")
    for run in (a, b):
        if not (run.split or {}).get("test_noises") and not run.test_noises.exists():
            notes.append(
                f"Run #{run.pk} was trained without test noises: it has no noisy test sets, "
                "so its results at the SNRs show “—”."
            )
    if a.snrs != b.snrs:
        notes.append("The two runs used different SNRs.")
    return notes


# ---------------------------------------------------------------- models


@login_required
def model_list(request):
    models = selectors.models_for(request.user).select_related("owner", "dataset")
    # The user's own run behind each model, to link to its curves and results.
    runs = dict(
        selectors.training_runs_for(request.user)
        .filter(model__isnull=False)
        .values_list("model_id", "pk")
    )
    rows = [
        {
            "model": m,
            "run": runs.get(m.pk),
            "can_delete": selectors.can_edit(request.user, m),
            "scores": [
                (name, f"{100 * m.metrics[name]['accuracy']:.1f}")
                for name in training.test_set_order(m.metrics or {})
                if isinstance(m.metrics.get(name), dict) and "accuracy" in m.metrics[name]
            ],
        }
        for m in models
    ]
    return render(request, "emotions/models.html", {"rows": rows})


def _model_action(request, model_id: int, act, done: str):
    """Run ``act(user, model)`` on a model the user can see; say how it went on the list."""
    try:
        model = selectors.models_for(request.user).get(pk=model_id)
    except EmotionModel.DoesNotExist:
        raise Http404("No such model.") from None
    try:
        act(request.user, model)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, done.format(model=model))
    return redirect("model-list")


@login_required
@require_POST
def model_activate(request, model_id: int):
    done = "{model} is now the active model, shared with everyone."
    return _model_action(request, model_id, training.activate_model, done)


@login_required
@require_POST
def model_delete(request, model_id: int):
    done = "{model} and its weights were deleted."
    return _model_action(request, model_id, training.delete_model, done)
