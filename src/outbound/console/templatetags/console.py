"""Template helpers: accessible form fields, sortable column headers, pagination links."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import forms, template
from django.http import HttpRequest
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

# Where a host name or an address may wrap: after each dot and before the @.
_BREAKS = str.maketrans({".": ".<wbr>", "@": "<wbr>@"})


@register.filter
def breakable(value: Any) -> SafeString:
    """``value`` escaped, with wrap points between a host name's labels and around ``@``.

    Table cells break only between words (``overflow-wrap: break-word``), so a long host or
    address wraps at its dots instead of forcing the table wider or breaking mid-label.
    """
    escaped = str(conditional_escape(value))
    # The escaped text holds no "." or "@" of its own making (entities use & and ;).
    return mark_safe(escaped.translate(_BREAKS))  # noqa: S308


@register.inclusion_tag("console/_field.html")
def field(bound: forms.BoundField, **extra: Any) -> dict[str, Any]:
    """A labelled input with its limits, help and errors, wired for screen readers.

    Errors are announced (``role="alert"``) next to the field and the input points at them
    (``aria-describedby``, ``aria-invalid``).
    """
    widget_id = bound.id_for_label or bound.auto_id
    described = []
    if bound.help_text:
        described.append(f"{widget_id}_help")
    if bound.errors:
        described.append(f"{widget_id}_error")
    attrs: dict[str, Any] = {}
    if described:
        attrs["aria-describedby"] = " ".join(described)
    if bound.errors:
        attrs["aria-invalid"] = "true"
    attrs.update(extra)
    widget = bound.field.widget
    return {
        "bound": bound,
        "widget_html": bound.as_widget(attrs=attrs),
        "widget_id": widget_id,
        "is_checkbox": isinstance(widget, forms.CheckboxInput),
        "is_multi": isinstance(widget, forms.CheckboxSelectMultiple),
    }


def _kept(request: HttpRequest, *dropped: str) -> list[tuple[str, str]]:
    """The current query parameters without ``dropped`` (filters survive sorting and paging)."""
    return [(k, v) for k, vs in request.GET.lists() if k not in dropped for v in vs]


def _sort_toggle(context: Any, key: str) -> tuple[str, str, str]:
    """``(query, aria-sort state, arrow)`` of the link that sorts by ``key``.

    The current ordering is the view's ``ordering`` (its default included) or the request's;
    a link to the current column reverses it.
    """
    request: HttpRequest = context["request"]
    current = context.get("ordering") or request.GET.get("ordering", "")
    if current == key:
        target, state, arrow = f"-{key}", "ascending", "▲"
    elif current == f"-{key}":
        target, state, arrow = key, "descending", "▼"
    else:
        target, state, arrow = key, "none", ""
    query = urlencode([*_kept(request, "ordering", "page"), ("ordering", target)])
    return query, state, arrow


@register.simple_tag(takes_context=True)
def sort_header(context: Any, label: str, key: str) -> str:
    """A column header that sorts by ``key``; a second click reverses. ``aria-sort`` set."""
    query, state, arrow = _sort_toggle(context, key)
    return format_html(
        '<th scope="col" aria-sort="{}"><a href="?{}">{}'
        '<span aria-hidden="true"> {}</span></a></th>',
        state,
        query,
        label,
        arrow,
    )


@register.inclusion_tag("console/_sort_bar.html", takes_context=True)
def sort_bar(context: Any, columns: list[tuple[str, str]]) -> dict[str, Any]:
    """The same sort links for phones, where the table header is hidden."""
    links = []
    for label, key in columns:
        query, _, arrow = _sort_toggle(context, key)
        links.append({"label": label, "url": f"?{query}", "arrow": arrow, "current": bool(arrow)})
    return {"links": links}


@register.inclusion_tag("console/_pagination.html", takes_context=True)
def pagination(context: dict[str, Any], page: Any) -> dict[str, Any]:
    params = _kept(context["request"], "page")

    def link(number: int) -> str:
        return "?" + urlencode([*params, ("page", str(number))])

    return {
        "page": page,
        "previous": link(page.previous_page_number()) if page.has_previous() else None,
        "next": link(page.next_page_number()) if page.has_next() else None,
    }
