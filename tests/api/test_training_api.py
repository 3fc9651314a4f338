"""Training API and pages without a worker: scoping, refusals, duplicates, models."""

import pytest
from rest_framework.test import APIClient

from emotions.models import EmotionModel, Job, TrainingRun
from tests.services.test_training import BACKBONE, TINY, make_dataset, make_noises

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def no_queue(monkeypatch):
    # Jobs stay queued: nothing here needs a worker.
    monkeypatch.setattr("emotions.services.jobs._dispatch", lambda *a: None)


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    client.user = user
    return client


@pytest.fixture
def researcher(make_user):
    return client_for(make_user("researcher"))


@pytest.fixture
def data(researcher):
    return make_dataset(researcher.user), make_noises(researcher.user)


def submit(client, dataset, noises=(), **extra):
    body = {
        "dataset": dataset.pk,
        "noises": [n.pk for n in noises],
        "backbone": BACKBONE,
        "config": TINY,
        **extra,
    }
    return client.post("/api/training-runs/", body, format="json")


def test_create_list_and_read_a_run(researcher, data):
    answer = submit(researcher, *data, preset="mixup", protocol="speaker")
    assert answer.status_code == 201, answer.content
    run = answer.json()
    assert run["job"]["state"] == "queued" and run["job"]["kind"] == "training"
    assert run["backbone"] == BACKBONE and run["snrs"] == [15.0, 20.0, 40.0]
    assert len(run["train_noises"]) == 2 and len(run["test_noises"]) == 1
    assert researcher.get("/api/training-runs/").json()["count"] == 1
    assert researcher.get(f"/api/training-runs/{run['id']}/").json()["id"] == run["id"]
    # No results before training has finished.
    answer = researcher.get(f"/api/training-runs/{run['id']}/csv/")
    assert answer.status_code == 409 and "no results yet" in answer.json()["detail"]


def test_other_users_see_nothing_of_a_run(researcher, data, make_user):
    run = submit(researcher, *data).json()
    other = client_for(make_user("other"))
    base = f"/api/training-runs/{run['id']}"
    for url in (f"{base}/", f"{base}/csv/", f"{base}/results/", f"/api/jobs/{run['job']['id']}/"):
        assert other.get(url).status_code == 404, url
    assert other.delete(f"{base}/").status_code == 404
    assert other.post(f"/api/jobs/{run['job']['id']}/cancel/").status_code == 404
    assert other.get("/api/training-runs/").json()["count"] == 0
    # Nor can they train on the researcher's private dataset or noise.
    answer = submit(other, *data)
    assert answer.status_code == 400 and answer.json()["dataset"] == ["No such dataset."]
    own = make_dataset(other.user)
    answer = submit(other, own, data[1])
    assert answer.status_code == 400 and "No such noise recording" in answer.json()["noises"][0]
    other.force_login(other.user)
    assert other.get(f"/train/runs/{run['id']}/").status_code == 404


def test_duplicate_submit_is_refused_with_409(researcher, data):
    assert submit(researcher, *data, seed=4).status_code == 201
    answer = submit(researcher, *data, seed=4)
    assert answer.status_code == 409
    assert "identical training run is already queued" in answer.json()["detail"]
    assert TrainingRun.objects.count() == 1
    assert submit(researcher, *data, seed=5).status_code == 201


@pytest.mark.parametrize(
    "extra, field, message",
    [
        ({"preset": "fancy"}, "preset", "not a valid choice"),
        ({"backbone": "vgg99"}, "backbone", "not a valid choice"),
        ({"snrs": ["loud"]}, "snrs", "valid number"),
        ({"kfold": 40}, "kfold", "Between 2 and 10"),
        ({"config": {"epochs": 0}}, "detail", "epochs must be between 1 and 500"),
        ({"config": {"colour": 1}}, "detail", "Unknown setting colour"),
        ({"snrs": [15, 99]}, "detail", "SNR must be between"),
        ({"noises": []}, "detail", "Noise mix-up needs"),
    ],
)
def test_bad_parameters_get_400_with_a_message(researcher, data, extra, field, message):
    dataset, noises = data
    extra = dict(extra)
    answer = submit(researcher, dataset, extra.pop("noises", noises), **extra)
    assert answer.status_code == 400, answer.content
    body = answer.json()
    assert message in str(body[field]), body
    assert not TrainingRun.objects.exists() and not Job.objects.exists()


def test_noise_in_both_lists_and_missing_dataset_are_refused(researcher, data):
    dataset, noises = data
    answer = researcher.post(
        "/api/training-runs/",
        {"dataset": dataset.pk, "train_noises": [noises[0].pk], "test_noises": [noises[0].pk]},
        format="json",
    )
    assert (
        answer.status_code == 400 and "both a training and a test noise" in answer.json()["detail"]
    )
    answer = researcher.post("/api/training-runs/", {}, format="json")
    assert answer.status_code == 400 and "dataset" in answer.json()


# ---------------------------------------------------------------- models


def test_models_are_own_and_shared_only(researcher, emotion_model, make_user):
    ids = lambda c: [m["id"] for m in c.get("/api/models/").json()["results"]]  # noqa: E731
    assert ids(researcher) == [emotion_model.pk]  # shared by its owner
    emotion_model.visibility = "private"
    emotion_model.save()
    assert ids(researcher) == []
    assert researcher.get(f"/api/models/{emotion_model.pk}/").status_code == 404
    assert researcher.delete(f"/api/models/{emotion_model.pk}/").status_code == 404


def test_only_staff_activate_and_only_one_model_is_active(
    researcher, emotion_model, make_user, checkpoint_file
):
    mine = EmotionModel.objects.create(
        owner=researcher.user, name="mine", backbone=BACKBONE, labels=["a", "b"]
    )
    answer = researcher.post(f"/api/models/{mine.pk}/activate/")
    assert answer.status_code == 403 and "administrator" in answer.json()["detail"]
    staff = client_for(emotion_model.owner)
    mine.visibility = "shared"
    mine.save()
    answer = staff.post(f"/api/models/{mine.pk}/activate/")
    assert answer.status_code == 200 and answer.json()["is_active"]
    assert list(EmotionModel.objects.filter(is_active=True)) == [mine]


def test_delete_removes_the_weights_file_and_needs_owner_or_staff(researcher, emotion_model):
    storage, name = emotion_model.weights.storage, emotion_model.weights.name
    assert storage.exists(name)
    answer = researcher.delete(f"/api/models/{emotion_model.pk}/")
    assert answer.status_code == 403
    owner = client_for(emotion_model.owner)
    assert owner.delete(f"/api/models/{emotion_model.pk}/").status_code == 204
    assert not EmotionModel.objects.exists() and not storage.exists(name)


# ---------------------------------------------------------------- pages


def test_train_page_has_labelled_controls_and_refuses_a_duplicate(researcher, data, client):
    client.force_login(researcher.user)
    dataset, noises = data
    page = client.get("/train/")
    assert page.status_code == 200
    html = page.content.decode()
    for control in ("id_dataset", "id_backbone", "id_protocol", "id_train_noises", "id_snrs"):
        assert f'for="{control}"' in html and f'id="{control}"' in html
    assert "Train on clean speech only" in html and "Train with clean + noise mix-up" in html
    assert "trained from scratch" in html  # some backbones have no ImageNet weights
    form = {
        "dataset": dataset.pk,
        "backbone": BACKBONE,
        "protocol": "speaker",
        "train_noises": [noises[0].pk, noises[1].pk],
        "test_noises": [noises[2].pk],
        "snrs": "15, 20, 40",
        "epochs": "1",
        "seed": "0",
        "preset": "mixup",
    }
    answer = client.post("/train/", form)
    run = TrainingRun.objects.get()
    assert answer.status_code == 302 and answer["Location"] == f"/train/runs/{run.pk}/"
    assert [n.pk for n in run.test_noises.all()] == [noises[2].pk]
    again = client.post("/train/", form)
    assert again.status_code == 409 and "identical training run" in again.content.decode()
    assert TrainingRun.objects.count() == 1
    page = client.get(f"/train/runs/{run.pk}/")
    assert page.status_code == 200 and f'data-live-job="{run.job_id}"' in page.content.decode()
    assert "Cancel training" in page.content.decode()


def test_models_and_compare_pages(researcher, data, client, emotion_model):
    client.force_login(researcher.user)
    html = client.get("/models/").content.decode()
    assert "tiny test model" in html and "no ImageNet weights: trained from scratch" in html
    assert "Make active" not in html  # not staff
    dataset, noises = data
    runs = []
    for preset, accuracy in (("clean", 0.6), ("mixup", 0.8)):
        run = submit(researcher, dataset, noises, preset=preset, seed=len(runs)).json()
        metrics = {"accuracy": accuracy, "precision": 0.5, "recall": 0.5, "f1": 0.5, "uar": 0.5}
        TrainingRun.objects.filter(pk=run["id"]).update(metrics={"clean": metrics})
        Job.objects.filter(pk=run["job"]["id"]).update(state="succeeded")
        runs.append(run["id"])
    trees = {"name": "spectral trees", "metrics": {"clean": {"f1": 0.64}}}
    TrainingRun.objects.filter(pk=runs[1]).update(baselines={"trees": trees})
    html = client.get("/train/compare/").content.decode()
    assert f"#{runs[0]}" in html and f"#{runs[1]}" in html
    assert "+20.0" in html  # mix-up minus clean, accuracy points
    # Run B stands beside its baselines, and the page says it does not beat them all.
    assert 'id="baselines-b"' in html and 'id="baselines-a"' not in html
    assert "<strong>64.0 (≥ network)</strong>" in html
    assert "The network does not beat every classical baseline: 1 of 1" in html


def test_model_page_actions_respect_owner_and_staff(researcher, client, emotion_model):
    client.force_login(researcher.user)
    answer = client.post(f"/models/{emotion_model.pk}/delete", follow=True)
    assert "Only its owner or an administrator" in answer.content.decode()
    assert EmotionModel.objects.filter(pk=emotion_model.pk).exists()
    client.force_login(emotion_model.owner)  # staff
    answer = client.post(f"/models/{emotion_model.pk}/delete", follow=True)
    assert "and its weights were deleted" in answer.content.decode()
    assert not EmotionModel.objects.exists()


# ---------------------------------------------------------------- held-out speakers, noise split


def test_held_out_speakers_are_named_through_the_api(researcher, data):
    dataset, noises = data
    answer = submit(researcher, dataset, noises, config={**TINY, "test_speakers": ["spk3", "spk1"]})
    assert answer.status_code == 201, answer.json()
    assert answer.json()["config"]["test_speakers"] == ["spk3", "spk1"]
    refusals = [
        ({"test_speakers": ["spk9"]}, {}, "has no speaker spk9; its speakers are spk0, spk1"),
        ({"test_speakers": "spk0,spk1,spk2,spk3"}, {}, "keep at least one speaker"),
        ({"test_speakers": ["spk0"]}, {"protocol": "utterance"}, "speaker-independent split only"),
        ({"test_speakers": ["spk0"]}, {"kfold": 2}, "k-fold cross-validation chooses its own"),
        ({"test_speakers": [3]}, {}, "must be a list of names"),
    ]
    for config, extra, message in refusals:
        answer = submit(researcher, dataset, noises, config={**TINY, **config}, seed=5, **extra)
        assert answer.status_code == 400 and message in answer.json()["detail"], answer.json()


def test_one_noise_list_on_the_page_is_shown_split_before_anything_starts(researcher, data, client):
    client.force_login(researcher.user)
    dataset, noises = data
    form = {
        "dataset": dataset.pk,
        "backbone": BACKBONE,
        "protocol": "speaker",
        "train_noises": [n.pk for n in noises],  # all three in one list
        "snrs": "15, 20, 40",
        "epochs": "1",
        "seed": "0",
        "test_speakers": "spk2, spk0",
        "preset": "mixup",
    }
    answer = client.post("/train/", form)
    html = answer.content.decode()
    assert answer.status_code == 200 and not TrainingRun.objects.exists()
    names = [n.name for n in noises]
    assert f"training {names[0]}, {names[2]}; testing {names[1]}" in html
    assert "press the Train button again" in html
    # The two lists now hold the split, as the user will submit it.
    train_select = html.split('id="id_train_noises"', 1)[1].split("</select>", 1)[0]
    test_select = html.split('id="id_test_noises"', 1)[1].split("</select>", 1)[0]
    for noise, select in (
        (noises[0], train_select),
        (noises[2], train_select),
        (noises[1], test_select),
    ):
        assert f'value="{noise.pk}" selected' in select
    assert f'value="{noises[1].pk}" selected' not in train_select
    assert 'value="spk2, spk0"' in html  # the form keeps what was typed

    confirmed = {
        **form,
        "train_noises": [noises[0].pk, noises[2].pk],
        "test_noises": [noises[1].pk],
    }
    answer = client.post("/train/", confirmed)
    run = TrainingRun.objects.get()
    assert answer.status_code == 302
    assert [n.pk for n in run.train_noises.order_by("pk")] == [noises[0].pk, noises[2].pk]
    assert [n.pk for n in run.test_noises.all()] == [noises[1].pk]
    assert run.config["test_speakers"] == ["spk2", "spk0"]


# ---------------------------------------------------------------- clean run, no test noises


def test_a_clean_run_without_test_noises_is_queued_with_a_warning(researcher, data, client):
    dataset, noises = data
    answer = submit(researcher, dataset, [], preset="clean")
    assert answer.status_code == 201, answer.content  # warned, not refused
    body = answer.json()
    assert body["test_noises"] == [] and len(body["warnings"]) == 1
    assert "no noisy test sets" in body["warnings"][0] and "15, 20, 40 dB" in body["warnings"][0]
    # A run with test noises carries no warning.
    answer = submit(researcher, dataset, noises, preset="clean", seed=1)
    assert answer.status_code == 201 and answer.json()["warnings"] == []

    client.force_login(researcher.user)
    assert "a clean-only run has no noisy test sets" in client.get("/train/").content.decode()
    # The finished run's page says why its noisy test sets are missing; the run with test
    # noises says nothing of the kind.
    bare, noisy = TrainingRun.objects.order_by("pk")
    metrics = {"accuracy": 0.6, "precision": 0.5, "recall": 0.5, "f1": 0.5, "uar": 0.5}
    metrics |= {"labels": ["angry", "sad"], "confusion_matrix": [[3, 1], [1, 3]], "n": 8}
    for run in (bare, noisy):
        TrainingRun.objects.filter(pk=run.pk).update(metrics={"clean": metrics})
        Job.objects.filter(pk=run.job_id).update(state="succeeded")
    html = client.get(f"/train/runs/{bare.pk}/").content.decode()
    assert 'id="no-noisy-test-sets"' in html and "results at 15, 20, 40 dB are missing" in html
    assert 'id="no-noisy-test-sets"' not in client.get(f"/train/runs/{noisy.pk}/").content.decode()
    html = client.get(f"/train/compare/?a={bare.pk}&b={noisy.pk}").content.decode()
    assert f"Run #{bare.pk} was trained without test noises" in html
    assert f"Run #{noisy.pk} was trained without test noises" not in html
