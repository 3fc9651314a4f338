import json

from django import template
from django.utils.html import escape

register = template.Library()


@register.filter
def safe_json(value) -> str:
    """JSON for an HTML attribute (escaped, so quotes and tags cannot break out)."""
    return escape(json.dumps(value or []))
