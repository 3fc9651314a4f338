"""API errors: service refusals become 4xx answers with a message, in one shape."""

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from emotions.services.errors import ServiceError


def exception_handler(exc, context):
    if isinstance(exc, ServiceError):
        return Response({"detail": exc.message}, status=exc.status_code)
    return drf_exception_handler(exc, context)
