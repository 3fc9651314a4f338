"""Refuse an oversized upload from its Content-Length, before Django reads the body."""

from django.conf import settings
from django.http import JsonResponse

from emotions.services.files import human_size

# Room for the multipart envelope and form fields around the file itself.
ENVELOPE_BYTES = 1024 * 1024


class UploadLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse({"detail": "Invalid Content-Length header."}, status=400)
        limit = settings.MAX_UPLOAD_BYTES
        if length > limit + ENVELOPE_BYTES:
            size, most = human_size(length), human_size(limit)
            return JsonResponse(
                {"detail": f"This upload is {size}; the limit is {most}."}, status=413
            )
        return self.get_response(request)
