"""Query parameters of the API and the pages, parsed in one place: a bad one is a 400 with
a message naming it, never a 500 from deep in the database (`?dataset=abc`, a NUL byte).

The API's exception handler turns BadParameter (a ServiceError) into {"detail": …};
pages use `bad_request_page`.
"""

import datetime
from collections.abc import Iterable

from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import render

from emotions.services.errors import ServiceError

MAX_TEXT_LENGTH = 200


class BadParameter(ServiceError):
    status_code = 400


def text(params: QueryDict, name: str, max_length: int = MAX_TEXT_LENGTH) -> str:
    """The parameter stripped ("" when absent)."""
    value = params.get(name, "").strip()
    if len(value) > max_length:
        raise BadParameter(f"“{name}” is at most {max_length} characters long.")
    return value


def integer(params: QueryDict, name: str, minimum: int | None = None) -> int | None:
    raw = text(params, name)
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise BadParameter(f"“{name}” must be a whole number, not “{raw[:40]}”.") from None
    if minimum is not None and value < minimum:
        raise BadParameter(f"“{name}” must be at least {minimum}.")
    return value


def boolean(params: QueryDict, name: str) -> bool | None:
    raw = text(params, name).lower()
    if not raw:
        return None
    if raw in ("true", "1", "yes"):
        return True
    if raw in ("false", "0", "no"):
        return False
    raise BadParameter(f"“{name}” must be true or false, not “{raw[:40]}”.")


def date(params: QueryDict, name: str) -> datetime.date | None:
    raw = text(params, name)
    if not raw:
        return None
    try:
        return datetime.date.fromisoformat(raw)
    except ValueError:
        raise BadParameter(
            f"“{name}” must be a date written YYYY-MM-DD, not “{raw[:40]}”."
        ) from None


def choice(params: QueryDict, name: str, choices: Iterable[str]) -> str | None:
    raw = text(params, name)
    if not raw:
        return None
    allowed = list(choices)
    if raw not in allowed:
        raise BadParameter(f"“{name}” must be one of {', '.join(allowed)}; not “{raw[:40]}”.")
    return raw


def bad_request_page(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "400.html", {"message": message}, status=400)


class QueryStringMiddleware:
    """Refuse a query string holding a NUL byte (or a control character) anywhere, for
    every view, the admin's included: databases refuse NUL in text (PostgreSQL raises)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        for key, values in request.GET.lists():
            if any(_has_control(part) for part in (key, *values)):
                message = (
                    f"The query parameter “{_printable(key)[:40]}” holds a control character "
                    "(such as NUL); remove it from the address."
                )
                if request.path.startswith("/api/"):
                    return JsonResponse({"detail": message}, status=400)
                return bad_request_page(request, message)
        return self.get_response(request)


def _has_control(value: str) -> bool:
    return any(ord(c) < 32 and c not in "\t\n\r" or c == "\x7f" for c in value)


def _printable(value: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in value)
