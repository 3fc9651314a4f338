"""Typed errors of the services; the API turns them into 4xx answers with a message.

failure_message() turns whatever stopped a job into the sentence its owner reads.
"""

import csv
import errno
import logging
import re

logger = logging.getLogger(__name__)


class ServiceError(Exception):
    """A request the service refuses, with a message written for the user."""

    status_code = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class Forbidden(ServiceError):
    status_code = 403


class NotFound(ServiceError):
    status_code = 404


class Conflict(ServiceError):
    status_code = 409


class TooLarge(ServiceError):
    status_code = 413


class StorageUnavailable(ServiceError):
    """The server could not store a file (read-only, full): its fault, not the request's."""

    status_code = 503


# ---------------------------------------------------------------- why a job failed

# An absolute path (two parts at least) where a message could show one: only its last part
# is kept, so no server folder ever reaches a user.
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])/(?:[^\s/'\"“”()\[\],;]+/)+([^\s/'\"“”()\[\],;]*)")
_ERRNO = re.compile(r"\[Errno -?\d+\]\s*")

_OS_ERRORS = {
    errno.ENOSPC: "the server ran out of disk space",
    errno.EDQUOT: "the server's disk quota is used up",
    errno.EROFS: "the server's storage is read-only",
    errno.EACCES: "the server's storage refused access",
    errno.EPERM: "the server's storage refused access",
    errno.ENOENT: "a file it needed is missing on the server (deleted meanwhile?)",
    errno.EIO: "the server's storage reported a read or write error",
}


def without_paths(text: str) -> str:
    """The text with server paths cut to their last part and errno tags removed."""
    return _ERRNO.sub("", _ABSOLUTE_PATH.sub(r"\1", text))


def failure_message(exc: BaseException, reference: int | str) -> str:
    """What a job's owner reads when `exc` stopped the job: refusals of the services as
    written, known troubles in plain words, anything else an internal error with a
    reference (the job's id) under which the full traceback is in the server log.

    Never an exception class name, a raw database error or a server path.
    """
    from django.db import DatabaseError, DataError, IntegrityError, OperationalError

    from emotions.ser.audio import AudioDecodeError

    if isinstance(exc, ServiceError):
        return without_paths(exc.message)
    logger.error("job %s failed (reference %s)", reference, reference, exc_info=exc)
    if isinstance(exc, AudioDecodeError):
        return f"A recording could not be read as audio: {without_paths(exc.reason)}."
    if isinstance(exc, csv.Error):
        return (
            "A CSV list could not be read: a field is longer than a CSV reader accepts, or "
            "the file is not plain CSV text. Check the file, then try again."
        )
    if isinstance(exc, UnicodeError):
        return (
            "A text file (such as a CSV list) is not readable text: save it as UTF-8, then "
            "try again."
        )
    if isinstance(exc, OSError) and exc.errno in _OS_ERRORS:
        return f"The job stopped: {_OS_ERRORS[exc.errno]}. Tell an administrator if it recurs."
    if isinstance(exc, MemoryError):
        return "The job stopped: the server ran out of memory. Try a smaller input."
    if isinstance(exc, OperationalError) and "full" in str(exc).lower():
        return "The job stopped: the server's database ran out of disk space."
    if isinstance(exc, DataError):
        return (
            "The database refused a value from this input (for example a label or name with "
            "a NUL character, or one that is too long). Check the file's text, then try again."
        )
    if isinstance(exc, (IntegrityError, OperationalError, DatabaseError)):
        return (
            f"The job stopped: the database refused a change (reference {reference}). "
            "Try again; tell an administrator if it recurs."
        )
    if type(exc).__name__ == "SoftTimeLimitExceeded":  # Celery's, without importing Celery
        return "The job ran past its time limit and was stopped."
    return (
        f"An internal error stopped this job (reference {reference}). The details are in "
        "the server's log; tell an administrator if it recurs."
    )
