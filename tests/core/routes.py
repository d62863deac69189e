"""Every route the URL resolver serves, with a concrete path to request: tests that must hold
for *every* endpoint (pagination, parsing) iterate over these, so a new endpoint is covered
the day it is added."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.exceptions import Resolver404

# ``(?P<pk>[^/.]+)`` (routers, re_path) and ``<str:id>`` / ``<id>`` (path) parameters.
_REGEX_PARAM = re.compile(r"\(\?P<(\w+)>[^)]*\)")
_PATH_PARAM = re.compile(r"<(?:\w+:)?(\w+)>")
_REGEX_LEFT = re.compile(r"[\^$*+?()\[\]{}|\\]")
WRITE_METHODS = ("post", "put", "patch")


@dataclass(frozen=True)
class Route:
    pattern: str  # as declared, prefixes joined
    path: str  # a concrete path, parameters filled in
    methods: frozenset[str]
    view: Any
    actions: Mapping[str, str] = field(default_factory=dict)  # viewsets: method → action
    detail: bool | None = None  # viewsets: a detail route or not

    def action(self, method: str) -> str | None:
        return self.actions.get(method)


def _walk(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, prefix + str(p.pattern))
        else:
            yield prefix + str(p.pattern), p


def _methods(callback: Any) -> frozenset[str]:
    actions = getattr(callback, "actions", None)
    if actions:
        return frozenset(actions)
    view = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if view is None:
        return frozenset({"get"})  # a plain function view
    return frozenset(
        m for m in view.http_method_names if m not in ("options", "head") and hasattr(view, m)
    )


def fill(pattern: str, values: Mapping[str, str]) -> str | None:
    """The pattern with its parameters replaced by ``values`` (``"1"`` by default), or
    ``None`` when what is left is still a regular expression (catch-alls, case variants)."""
    path = pattern.replace("^", "").replace("$", "")
    path = _REGEX_PARAM.sub(lambda m: values.get(m.group(1), "1"), path)
    path = _PATH_PARAM.sub(lambda m: values.get(m.group(1), "1"), path)
    if _REGEX_LEFT.search(path):
        return None
    return "/" + path


def routes(values: Mapping[str, str] | None = None) -> list[Route]:
    """Every route that a concrete path reaches (a route shadowed by an earlier one, such as
    a case-insensitive twin, is left out: requests never reach it)."""
    found = []
    for pattern, p in _walk(get_resolver().url_patterns):
        path = fill(pattern, values or {})
        if path is None:
            continue
        try:
            match = resolve(path)
        except Resolver404:
            continue
        if match.func is not p.callback:
            continue
        initkwargs = getattr(p.callback, "initkwargs", None) or {}
        found.append(
            Route(
                pattern=pattern,
                path=path,
                methods=_methods(p.callback),
                view=getattr(p.callback, "cls", None) or getattr(p.callback, "view_class", None),
                actions=dict(getattr(p.callback, "actions", None) or {}),
                detail=initkwargs.get("detail"),
            )
        )
    return found
