"""Every read of user data, always scoped to the requesting user."""

from django.db.models import QuerySet

from emotions.models import Job


def jobs_for(user) -> QuerySet[Job]:
    if not user.is_authenticated:
        return Job.objects.none()
    return Job.objects.filter(owner=user)


def job_for(user, job_id: int) -> Job:
    """The user's job; raises Job.DoesNotExist for other users' jobs too (no leak)."""
    return jobs_for(user).get(pk=job_id)
