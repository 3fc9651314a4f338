import json

from django import template
from django.conf import settings
from django.utils.html import escape

from emotions.services.files import human_size

register = template.Library()


@register.filter
def safe_json(value) -> str:
    """JSON for an HTML attribute (escaped, so quotes and tags cannot break out)."""
    return escape(json.dumps(value or []))


@register.simple_tag
def max_upload_bytes() -> int:
    """The upload limit in bytes, for the drop areas' ``data-max-bytes`` (checked in JS)."""
    return settings.MAX_UPLOAD_BYTES


@register.simple_tag
def max_upload_size() -> str:
    """The upload limit as the server words it in its refusals ("2.147 GB")."""
    return human_size(settings.MAX_UPLOAD_BYTES)
