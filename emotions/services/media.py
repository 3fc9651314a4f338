"""Serving stored media to their owner, with byte ranges so audio players can seek."""

import mimetypes
import re

from django.db.models.fields.files import FieldFile
from django.http import FileResponse, Http404, HttpResponse, StreamingHttpResponse

RANGE = re.compile(r"bytes=(\d*)-(\d*)$")
CHUNK = 256 * 1024


def ranged_file_response(request, field: FieldFile):
    if not field.name or not field.storage.exists(field.name):
        raise Http404("The file is gone.")
    size = field.storage.size(field.name)
    content_type = mimetypes.guess_type(field.name)[0] or ""
    if not content_type.startswith(("audio/", "video/")):
        # The name came from the uploader: a "recording" named .html or .svg must not be
        # rendered as a page of this site (its scripts would run here); download it instead.
        content_type = "application/octet-stream"
    match = RANGE.match(request.headers.get("Range", "").strip())
    if not match or not any(match.groups()):
        response = FileResponse(field.storage.open(field.name, "rb"), content_type=content_type)
        response["Accept-Ranges"] = "bytes"
        return response
    first, last = match.groups()
    if first:
        start, end = int(first), int(last) if last else size - 1
    else:  # suffix range: the last N bytes
        start, end = max(size - int(last), 0), size - 1
    end = min(end, size - 1)
    if start > end or start >= size:
        refused = HttpResponse(status=416)
        refused["Content-Range"] = f"bytes */{size}"
        return refused

    def body():
        with field.storage.open(field.name, "rb") as fh:
            fh.seek(start)
            remaining = end - start + 1
            while remaining > 0:
                data = fh.read(min(CHUNK, remaining))
                if not data:
                    break
                remaining -= len(data)
                yield data

    response = StreamingHttpResponse(body(), status=206, content_type=content_type)
    response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Content-Length"] = str(end - start + 1)
    response["Accept-Ranges"] = "bytes"
    return response
