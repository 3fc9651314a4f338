"""Trained models: choosing the active one and deleting one."""

from __future__ import annotations

from django.db import transaction
from django.db.models import ProtectedError

from emotions import selectors
from emotions.models import EmotionModel, Visibility
from emotions.services.datasets import delete_files
from emotions.services.errors import Conflict, Forbidden


def activate_model(user, model: EmotionModel) -> EmotionModel:
    """Make ``model`` the one active model (staff only); it is shared with everyone then."""
    if not user.is_staff:
        raise Forbidden("Only an administrator can choose the active model.")
    with transaction.atomic():
        EmotionModel.objects.exclude(pk=model.pk).filter(is_active=True).update(is_active=False)
        EmotionModel.objects.filter(pk=model.pk).update(
            is_active=True, visibility=Visibility.SHARED
        )
    model.refresh_from_db()
    return model


def delete_model(user, model: EmotionModel) -> None:
    """Delete a model and its weights file (owner or staff)."""
    if not selectors.can_edit(user, model):
        raise Forbidden("Only its owner or an administrator can delete this model.")
    name = model.weights.name
    try:
        with transaction.atomic():
            model.delete()
            # Logged, not raised, if the storage refuses: the row is gone already.
            transaction.on_commit(lambda: delete_files([name]))
    except ProtectedError as exc:  # Lecture.model is PROTECT: reports keep their model
        lectures = model.lecture_set.count()
        raise Conflict(
            f"“{model}” analysed {lectures} lecture(s); their reports show its labels, so it "
            "cannot be deleted. Delete those lectures first, or deactivate the model so that "
            "no new lecture uses it."
        ) from exc
