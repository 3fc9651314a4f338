"""Refuse an oversized upload from its Content-Length, before Django reads the body.

Under the ASGI server sersite.bodylimit refuses such requests before Django sees them;
this covers the other ways into Django (WSGI, the test client) with the same message.
"""

from django.http import JsonResponse

from sersite.bodylimit import body_limit, too_large_detail


class UploadLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse({"detail": "Invalid Content-Length header."}, status=400)
        if length > body_limit():
            return JsonResponse({"detail": too_large_detail(length)}, status=413)
        return self.get_response(request)
