from django import template

from emotions.roles import sections_for

register = template.Library()


@register.simple_tag(takes_context=True)
def nav_sections(context) -> frozenset[str]:
    """`{% nav_sections as sections %}`: the sections of the signed-in user's role."""
    request = context.get("request")
    return sections_for(request.user) if request is not None else frozenset()


@register.simple_tag
def signup_is_open() -> bool:
    """`{% signup_is_open as signup_open %}`: whether staff opened sign-up."""
    from emotions.services.accounts import signup_open

    return signup_open()
