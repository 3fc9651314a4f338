"""Training runs: refusals, split protocols, noise separation, the block cache, retries.

The dataset is made here: two emotions told apart by pitch, four speakers, 1.6 s each
(two blocks), and generated noise recordings; the network is a small one from scratch
at 64 x 64 so a whole run takes seconds on the CPU.
"""

import io

import numpy as np
import pytest
import soundfile as sf
from django.core.files.base import ContentFile

from emotions.models import Dataset, DerivedBlocks, EmotionModel, Job, NoiseProfile, Utterance
from emotions.services import jobs, training
from emotions.services.errors import Conflict, NotFound, ServiceError

pytestmark = pytest.mark.django_db

SR = 16_000
LABELS = ["angry", "calm"]
PITCH = {"angry": 320.0, "calm": 120.0}
# Tiny but real: a small backbone from scratch, 64 x 64 images, one epoch.
TINY = {"epochs": 1, "batch_size": 16, "image_size": 64, "pretrained": False}
BACKBONE = "mobilenet_v3_small"


def voiced(seconds: float, f0: float, seed: int) -> np.ndarray:
    """Speech-like sound: harmonics of ``f0`` under a syllable-rate envelope."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    tone = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
    envelope = 0.5 * (1 + np.sin(2 * np.pi * 4 * t))
    return (0.2 * tone * envelope + 0.01 * rng.standard_normal(t.size)).astype("float32")


def wav_bytes(signal: np.ndarray) -> bytes:
    out = io.BytesIO()
    sf.write(out, signal, SR, format="WAV", subtype="PCM_16")
    return out.getvalue()


def make_dataset(owner, *, speakers: int = 4, per_label: int = 2, seconds: float = 1.6, **extra):
    """Utterances of two pitch-coded emotions by ``speakers`` speakers, saved via storage."""
    dataset = Dataset.objects.create(owner=owner, name="tiny pitch set", labels=LABELS, **extra)
    seed = 0
    for s in range(speakers):
        for label in LABELS:
            for i in range(per_label):
                seed += 1
                f0 = PITCH[label] * (1 + 0.04 * s) * (1 + 0.02 * i)
                utterance = Utterance(
                    dataset=dataset,
                    label=label,
                    speaker=f"spk{s}",
                    group=f"Ses0{s % 2 + 1}",
                    duration_s=seconds,
                    source_path=f"spk{s}/{label}_{i}.wav",
                )
                content = ContentFile(wav_bytes(voiced(seconds, f0, seed)))
                utterance.audio.save(f"spk{s}_{label}_{i}.wav", content, save=False)
                utterance.save()
    return dataset


def make_noises(owner, n: int = 3, seconds: float = 3.0) -> list[NoiseProfile]:
    """Generated noise recordings: white, brown (integrated white) and a hum with hiss."""
    rng = np.random.default_rng(42)
    t = np.arange(int(seconds * SR)) / SR
    kinds = [
        ("white", rng.standard_normal(t.size)),
        ("brown", np.cumsum(rng.standard_normal(t.size))),
        ("hum", np.sin(2 * np.pi * 50 * t) + 0.3 * rng.standard_normal(t.size)),
        ("babble", sum(voiced(seconds, f, k) for k, f in enumerate((110, 170, 230)))),
    ]
    profiles = []
    for name, x in kinds[:n]:
        x = 0.3 * (x - x.mean()) / np.abs(x - x.mean()).max()
        profile = NoiseProfile(owner=owner, name=f"{name} noise", synthetic=True)
        profile.audio.save(f"{name}.wav", ContentFile(wav_bytes(x.astype("float32"))), save=False)
        profile.save()
        profiles.append(profile)
    return profiles


def run_job(run) -> Job:
    """Run the run's job in this process, as the worker would."""
    jobs.run(run.job_id, training.run_training, worker="test", device="cpu")
    return Job.objects.get(pk=run.job_id)


@pytest.fixture(autouse=True)
def one_torch_thread():
    # Two threads on two shared cores spin against each other (10x slower under load).
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def owner(make_user):
    return make_user("researcher")


@pytest.fixture
def dataset(owner):
    return make_dataset(owner)


@pytest.fixture
def noises(owner):
    return make_noises(owner)


def create(owner, dataset, **kwargs):
    kwargs.setdefault("backbone", BACKBONE)
    kwargs.setdefault("config", dict(TINY))
    return training.create_training_run(owner, dataset, dispatch=False, **kwargs)


# ---------------------------------------------------------------- refusals


def test_refuses_a_dataset_with_one_emotion(owner, noises):
    dataset = make_dataset(owner, speakers=2)
    dataset.utterances.filter(label="calm").update(excluded=True)
    with pytest.raises(ServiceError, match="at least two emotions"):
        create(owner, dataset, noises=noises)


def test_mixup_needs_noises_and_two_of_them(owner, dataset, noises):
    with pytest.raises(ServiceError, match="Noise mix-up needs"):
        create(owner, dataset, preset="mixup")
    with pytest.raises(ServiceError, match="Noise mix-up needs"):
        create(owner, dataset, preset="mixup", noises=noises[:1])
    # The clean preset trains without noise and tests on the one recording.
    run = create(owner, dataset, preset="clean", noises=noises[:1])
    assert list(run.train_noises.all()) == [] and list(run.test_noises.all()) == noises[:1]


def test_a_noise_cannot_be_both_training_and_test(owner, dataset, noises):
    with pytest.raises(ServiceError, match="both a training and a test noise"):
        create(owner, dataset, train_noises=noises[:2], test_noises=noises[1:])


def test_one_list_is_split_deterministically_and_disjointly(owner, dataset, noises):
    run = create(owner, dataset, noises=list(reversed(noises)))
    train = [n.pk for n in run.train_noises.order_by("pk")]
    test = [n.pk for n in run.test_noises.order_by("pk")]
    ids = sorted(n.pk for n in noises)
    assert train == [ids[0], ids[2]] and test == [ids[1]]
    # The clean preset tests on the same noises, so the two runs compare like for like.
    clean = create(owner, dataset, preset="clean", noises=noises)
    assert [n.pk for n in clean.test_noises.order_by("pk")] == test
    assert not clean.train_noises.exists()


def test_speaker_protocol_needs_two_speakers(owner, noises):
    dataset = make_dataset(owner, speakers=1)
    with pytest.raises(ServiceError, match="at least 2 speakers"):
        create(owner, dataset, noises=noises, protocol="speaker")
    assert create(owner, dataset, noises=noises, protocol="utterance")


def test_bad_settings_are_refused_with_messages(owner, dataset, noises):
    with pytest.raises(ServiceError, match="Unknown setting colour"):
        create(owner, dataset, noises=noises, config={"colour": "red"})
    with pytest.raises(ServiceError, match="epochs must be between 1 and 500"):
        create(owner, dataset, noises=noises, config={"epochs": 0})
    with pytest.raises(ServiceError, match="Unknown backbone"):
        create(owner, dataset, noises=noises, backbone="vgg99")
    with pytest.raises(ServiceError, match="SNR must be between"):
        create(owner, dataset, noises=noises, snrs=[15, 500])
    with pytest.raises(ServiceError, match="Unknown protocol"):
        create(owner, dataset, noises=noises, protocol="whatever")


def test_other_users_data_is_not_found(owner, dataset, noises, make_user):
    stranger = make_user("stranger")
    with pytest.raises(NotFound):
        create(stranger, dataset, preset="clean")
    own = make_dataset(stranger)
    with pytest.raises(NotFound, match="No such noise"):
        create(stranger, own, noises=noises)


def test_identical_queued_run_is_refused_but_a_different_one_is_not(owner, dataset, noises):
    first = create(owner, dataset, noises=noises, seed=1)
    with pytest.raises(Conflict, match=f"run #{first.pk}"):
        create(owner, dataset, noises=noises, seed=1)
    create(owner, dataset, noises=noises, seed=2)
    jobs.request_cancel(first.job)
    assert create(owner, dataset, noises=noises, seed=1)  # the first one ended


# ---------------------------------------------------------------- the job


def test_mixup_run_splits_by_speaker_and_keeps_test_noises_out_of_training(
    owner, dataset, noises, monkeypatch
):
    from emotions.ser import training as core

    seen = {}
    real_train = core.train

    def spy(net, images, labels, config, **kwargs):
        seen["n_train"] = len(labels)
        return real_train(net, images, labels, config, **kwargs)

    monkeypatch.setattr(core, "train", spy)
    run = create(owner, dataset, noises=noises, protocol="speaker", config={**TINY, "epochs": 2})
    job = run_job(run)
    assert job.state == "succeeded", job.error
    run.refresh_from_db()
    split = run.split

    # Whole speakers on each side.
    assert split["protocol"] == "speaker" and not split["leaks_speakers"]
    assert set(split["train_speakers"]).isdisjoint(split["test_speakers"])
    speakers = lambda ids: {u.speaker for u in Utterance.objects.filter(pk__in=ids)}  # noqa: E731
    assert speakers(split["train_utterances"]) == set(split["train_speakers"])
    assert speakers(split["test_utterances"]).isdisjoint(speakers(split["train_utterances"]))

    # Training mixtures use training noises only; test mixtures test noises only.
    train_ids = {n.pk for n in run.train_noises.all()}
    test_ids = {n.pk for n in run.test_noises.all()}
    assert train_ids and test_ids and train_ids.isdisjoint(test_ids)
    assert {m["noise"] for m in split["mixtures"]["train"]} <= train_ids
    assert {m["noise"] for m in split["mixtures"]["test"]} <= test_ids
    for row in DerivedBlocks.objects.filter(noise__isnull=False):
        used_for_training = row.utterance_id in split["train_utterances"]
        assert (row.noise_id in train_ids) == used_for_training, row.key

    # Clean blocks plus one noisy copy per SNR went into training.
    assert seen["n_train"] == split["n_clean_train_blocks"] * 4 == split["n_train_blocks"]

    model = EmotionModel.objects.get()
    assert run.model == model and model.version == 1
    assert set(model.metrics) == {"clean", "15dB", "20dB", "40dB"}
    for metrics in model.metrics.values():
        assert metrics["n"] == split["n_test_blocks"]
        assert {"accuracy", "precision", "recall", "f1", "uar", "confusion_matrix"} <= set(metrics)
    assert model.provenance == "no ImageNet weights: trained from scratch" and not model.pretrained
    assert model.labels == LABELS and model.split_fingerprint == split["fingerprint"]
    assert model.weights.storage.exists(model.weights.name)
    assert [h["epoch"] for h in run.history] == [1, 2]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(run.history[0])
    rows = training.results_rows(run.metrics)
    assert [r[0] for r in rows] == ["clean", "15dB", "20dB", "40dB"]
    assert training.results_csv(run).splitlines()[0].startswith("Test set,Accuracy (%)")


def test_second_run_reuses_cached_blocks_and_a_retry_saves_no_second_model(
    owner, dataset, noises, monkeypatch
):
    first = create(owner, dataset, noises=noises, protocol="utterance", seed=3)
    assert run_job(first).state == "succeeded"
    rows = {r.key: (r.pk, r.data.name) for r in DerivedBlocks.objects.all()}
    assert len(rows) == dataset.utterances.count() * 4  # clean + 3 SNRs, each utterance once

    # Blocks are read back, never made again.
    from emotions.services import blocks

    def must_not_generate(*args, **kwargs):
        raise AssertionError("blocks were generated again")

    monkeypatch.setattr(blocks, "_make_clean", must_not_generate)
    monkeypatch.setattr(blocks, "_make_mixed", must_not_generate)
    second = create(owner, dataset, noises=noises, protocol="utterance", seed=3, name="again")
    job = run_job(second)
    assert job.state == "succeeded", job.error
    assert job.result["blocks"]["generated"] == 0 and job.result["blocks"]["reused"] > 0
    assert {r.key: (r.pk, r.data.name) for r in DerivedBlocks.objects.all()} == rows

    # A redelivered task finds the model saved and adds nothing.
    again = training.run_training(Job.objects.get(pk=second.job_id), jobs.Reporter(second.job_id))
    assert again["model"] == job.result["model"]
    assert EmotionModel.objects.count() == 2


def test_random_block_split_is_recorded_as_leaking(owner, dataset, noises):
    run = create(owner, dataset, preset="clean", protocol="random_blocks", noises=noises[:1])
    assert run_job(run).state == "succeeded"
    run.refresh_from_db()
    assert run.split["leaks_speakers"] and run.split["unit"] == "block"
    assert "higher" in run.split["warning"]
    assert set(run.metrics) == {"clean", "15dB", "20dB", "40dB"}
    assert run.model.metrics["clean"]["n"] == run.split["n_test_blocks"]


def test_kfold_reports_mean_and_std(owner, dataset, noises):
    run = create(owner, dataset, preset="clean", protocol="speaker", noises=noises, kfold=2)
    job = run_job(run)
    assert job.state == "succeeded", job.error
    run.refresh_from_db()
    kfold = run.metrics["kfold"]
    assert kfold["k"] == 2 and len(kfold["folds"]) == 2
    mean = kfold["summary"]["clean"]["accuracy"]["mean"]
    folds = [f["clean"]["accuracy"] for f in kfold["folds"]]
    assert mean == pytest.approx(np.mean(folds))
    assert {h["fold"] for h in run.history} == {1, 2}
    assert "2-fold mean" in training.results_csv(run)


def test_cancelled_run_saves_no_model(owner, dataset, noises):
    run = create(owner, dataset, noises=noises)
    Job.objects.filter(pk=run.job_id).update(cancel_requested=True)
    jobs.start(run.job_id, "test", "cpu")
    with pytest.raises(jobs.JobCancelled):
        training.run_training(Job.objects.get(pk=run.job_id), jobs.Reporter(run.job_id))
    assert not EmotionModel.objects.exists()


def test_backbone_notice_matches_the_ml_core():
    from emotions.ser import networks

    assert training.SCRATCH_NOTICE == networks.SCRATCH_PROVENANCE
    choices = {c["name"]: c for c in training.backbone_choices()}
    assert not choices["mobilenet_v3_small"]["pretrained"]
    assert choices["mobilenet_v3_small"]["note"] == "no ImageNet weights: trained from scratch"


# ---------------------------------------------------------------- commands


def test_train_command_runs_in_process_and_prints_the_table(owner, dataset, noises):
    from django.core.management import call_command

    out = io.StringIO()
    args = ["--dataset", str(dataset.pk), "--preset", "clean", "--protocol", "utterance"]
    args += ["--backbone", BACKBONE, "--epochs", "1", "--image-size", "64", "--batch-size", "16"]
    args += ["--noises", *(str(n.pk) for n in noises)]
    call_command("train", *args, stdout=out)
    text = out.getvalue()
    assert "trained from scratch" in text and "Accuracy (%)" in text
    table = text.split("Accuracy (%)", 1)[1].splitlines()[1:]
    assert [line.split()[0] for line in table if line.strip()] == ["clean", "15dB", "20dB", "40dB"]
    run = dataset.training_runs.get()
    assert run.job.state == "succeeded" and run.model is not None


def test_import_weights_checks_architecture_and_checksum(tmp_path, settings):
    import torch
    import torchvision
    from django.core.management import CommandError, call_command

    settings.WEIGHTS_DIR = tmp_path / "weights"
    state = torchvision.models.mobilenet_v3_small(weights=None).state_dict()
    good = tmp_path / "mobilenet_v3_small-weights.pth"
    torch.save(state, good)
    with pytest.raises(CommandError, match="Not imported: not torchvision alexnet"):
        call_command("import_weights", "alexnet", str(good))
    with pytest.raises(CommandError, match="Checksum mismatch"):
        call_command("import_weights", "mobilenet_v3_small", str(good), "--sha256", "0" * 64)
    renamed = tmp_path / "mobilenet_v3_small-0badc0de.pth"
    renamed.write_bytes(good.read_bytes())
    with pytest.raises(CommandError, match="the name .* says sha256 0badc0de"):
        call_command("import_weights", "mobilenet_v3_small", str(renamed))

    out = io.StringIO()
    call_command("import_weights", "mobilenet_v3_small", str(good), stdout=out)
    assert "Imported mobilenet_v3_small weights" in out.getvalue()
    assert training.weights_available("mobilenet_v3_small")
    choices = {c["name"]: c for c in training.backbone_choices()}
    assert choices["mobilenet_v3_small"]["pretrained"]


# ---------------------------------------------------------------- baselines and predictions


def test_baselines_and_per_item_predictions_are_kept_with_the_run(owner, dataset, noises):
    run = create(owner, dataset, noises=noises, protocol="speaker")
    job = run_job(run)
    assert job.state == "succeeded", job.error
    run.refresh_from_db()
    split = run.split

    # Every baseline scored on every test set of the network, on as many blocks.
    assert len(run.baselines) == 4
    for baseline in run.baselines.values():
        assert set(baseline["metrics"]) == set(run.metrics)
        for name, metrics in baseline["metrics"].items():
            assert metrics["n"] == run.metrics[name]["n"] == split["n_test_blocks"]
            assert metrics["labels"] == LABELS
    assert "baselines_s" in split["timing"]

    # The predictions reproduce the network's own figures.
    record = run.predictions
    assert record["labels"] == LABELS
    rows = [dict(zip(record["columns"], r, strict=False)) for r in record["rows"]]
    assert len(rows) == 4 * split["n_test_blocks"]
    for name, metrics in run.metrics.items():
        mine = [r for r in rows if r["test_set"] == name]
        correct = sum(r["true"] == r["predicted"] for r in mine)
        assert correct / len(mine) == pytest.approx(metrics["accuracy"])
    assert {r["speaker"] for r in rows} == set(split["test_speakers"])
    assert {r["utterance"] for r in rows} == set(split["test_utterances"])
    test_names = {n["name"] for n in split["test_noises"]}
    assert {r["noise"] for r in rows if r["test_set"] != "clean"} <= test_names
    assert {r["snr_db"] for r in rows} == {None, 15.0, 20.0, 40.0}
    for r in record["rows"]:
        assert sum(r[len(record["columns"]) :]) == pytest.approx(1.0, abs=1e-3)

    text = training.predictions_csv(run)
    header = text.splitlines()[0].split(",")
    assert header[-2:] == ["p_angry", "p_calm"] and len(text.splitlines()) == len(rows) + 1
    csv_rows = training.results_csv(run).splitlines()
    assert sum("(spectral stats + gradient-boosted trees)" in line for line in csv_rows) == 4


def test_baselines_can_be_turned_off(owner, dataset, noises):
    run = create(owner, dataset, noises=noises, config={**TINY, "baselines": False})
    assert run_job(run).state == "succeeded"
    run.refresh_from_db()
    assert run.baselines == {} and training.baseline_comparison(run)["sets"] == []


def test_comparison_says_where_the_network_does_not_beat_a_baseline():
    from emotions.models import TrainingRun

    def figures(f1: float) -> dict:
        return {"f1": f1}

    run = TrainingRun(
        metrics={"clean": figures(0.6), "15dB": figures(0.5), "kfold": {}},
        baselines={
            "trees": {
                "name": "spectral trees",
                "metrics": {"clean": figures(0.64), "15dB": figures(0.4)},
            },
            "egemaps": {
                "name": "eGeMAPS",
                "metrics": {"clean": figures(0.3), "15dB": figures(0.5)},
            },
        },
    )
    comparison = training.baseline_comparison(run)
    assert [s["test_set"] for s in comparison["sets"]] == ["clean", "15dB"]
    assert [[b["beaten"] for b in s["baselines"]] for s in comparison["sets"]] == [
        [False, True],
        [True, False],  # a tie is not a win
    ]
    assert comparison["shortfalls"] == [
        "On the clean test set the network (weighted F1 60.0%) does not beat spectral trees "
        "(64.0%).",
        "On the 15dB test set the network (weighted F1 50.0%) does not beat eGeMAPS (50.0%).",
    ]
    assert "2 of 4 comparisons" in comparison["summary"]
    run.baselines = {"egemaps": {"name": "eGeMAPS", "metrics": {"clean": figures(0.1)}}}
    assert training.baseline_comparison(run)["summary"].startswith("The network beats every")


# ---------------------------------------------------------------- research workflow


def test_named_held_out_speakers_are_the_test_speakers(owner, dataset, noises):
    run = create(
        owner,
        dataset,
        noises=noises,
        config={**TINY, "test_speakers": "spk2, spk1", "baselines": False},
    )
    assert run_job(run).state == "succeeded"
    run.refresh_from_db()
    assert run.split["test_speakers"] == ["spk1", "spk2"]
    assert run.split["train_speakers"] == ["spk0", "spk3"]
    assert run.split["meta"]["named"] and run.model.split_fingerprint == run.split["fingerprint"]


def test_train_command_takes_every_setting_the_api_does(owner, dataset, noises):
    from django.core.management import call_command

    from emotions.management.commands.train import Command
    from emotions.ser.constants import TRAIN_SETTINGS

    parser = Command().create_parser("manage.py", "train")
    options = {a.dest for a in parser._actions}
    assert set(TRAIN_SETTINGS) <= options
    out = io.StringIO()
    args = ["--dataset", str(dataset.pk), "--preset", "mixup", "--protocol", "speaker"]
    args += ["--backbone", BACKBONE, "--epochs", "1", "--image-size", "64", "--batch-size", "16"]
    args += ["--trainable", "all", "--class-weighting", "none", "--no-pretrained"]
    args += ["--test-speakers", "spk0,spk3", "--no-baselines", "--lr-gamma", "0.5"]
    args += ["--train-noises", str(noises[0].pk), "--test-noises", str(noises[1].pk)]
    call_command("train", *args, stdout=out)
    run = dataset.training_runs.get()
    assert run.job.state == "succeeded"
    config = run.config
    assert config["trainable"] == "all" and config["class_weighting"] == "none"
    assert config["pretrained"] is False and config["baselines"] is False
    assert config["test_speakers"] == ["spk0", "spk3"] and config["lr_gamma"] == 0.5
    assert run.split["test_speakers"] == ["spk0", "spk3"] and run.baselines == {}
    text = out.getvalue()
    assert (
        f"Training noises: #{noises[0].pk}" in text
        and f"test noises (never in training): #{noises[1].pk}" in text
    )


def test_epoch_choice_validates_on_training_speakers_never_on_the_test_set(
    owner, dataset, noises, monkeypatch, client
):
    from emotions.ser import training as core

    seen = {}
    real_train = core.train

    def spy(net, images, labels, config, **kwargs):
        seen["n_train"], seen["n_val"] = len(labels), len(kwargs["val"][1])
        seen["select_epoch"] = config.select_epoch
        return real_train(net, images, labels, config, **kwargs)

    monkeypatch.setattr(core, "train", spy)
    config = {**TINY, "epochs": 2, "select_epoch": True, "validation_fraction": 0.5}
    config |= {"pool_utterances": True, "baselines": False}
    run = create(owner, dataset, noises=noises, protocol="speaker", config=config)
    assert run_job(run).state == "succeeded"
    run.refresh_from_db()
    split, validation = run.split, run.split["validation"]
    assert seen["select_epoch"] and validation["unit"] == "speaker"
    # Whole training speakers, with their noisy copies; the test speakers stay untouched.
    assert set(validation["groups"]) < set(split["train_speakers"])
    assert set(validation["groups"]).isdisjoint(split["test_speakers"])
    assert seen["n_val"] == validation["n_blocks"] > 0
    assert seen["n_train"] + seen["n_val"] == split["n_train_blocks"]
    assert validation["n_blocks"] % 4 == 0  # clean + 3 SNRs of the same blocks
    client.force_login(owner)
    page = client.get(f"/train/runs/{run.pk}/").content.decode()
    speakers = ", ".join(validation["groups"])
    assert (
        f"the validation speakers carved from the training side to choose the epoch ({speakers}"
        in page
    )

    # Pooled over utterances: all blocks of an utterance share one prediction.
    columns = run.predictions["columns"]
    by_utterance = {}
    for row in run.predictions["rows"]:
        key = (row[columns.index("test_set")], row[columns.index("utterance")])
        by_utterance.setdefault(key, set()).add(tuple(row[len(columns) :]))
    assert all(len(probabilities) == 1 for probabilities in by_utterance.values())
