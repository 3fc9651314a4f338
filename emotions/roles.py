"""Roles, from Django groups: teachers analyse lectures, researchers train and curate
models, staff do everything. The navigation shows each user the sections of their role.

An account in neither group keeps every section (accounts made before roles existed
still find their pages); an admin puts teachers in the "teachers" group."""

TEACHERS = "teachers"
RESEARCHERS = "researchers"
ALL_SECTIONS = frozenset({"lectures", "train", "datasets", "noise", "models", "jobs"})
TEACHER_SECTIONS = frozenset({"lectures", "jobs"})


def sections_for(user) -> frozenset[str]:
    """The navigation sections a user sees."""
    if not user.is_authenticated:
        return frozenset()
    if user.is_staff:
        return ALL_SECTIONS
    groups = set(user.groups.values_list("name", flat=True))
    if TEACHERS in groups and RESEARCHERS not in groups:
        return TEACHER_SECTIONS
    return ALL_SECTIONS
