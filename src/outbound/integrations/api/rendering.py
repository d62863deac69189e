"""The JSON renderer of the integrations API: DRF's, which also writes a list page whose rows
are already JSON text (``integration_serializers.page_json``) into the envelope as they are."""

from __future__ import annotations

from typing import Any

from rest_framework.renderers import JSONRenderer
from rest_framework.settings import api_settings


class RenderedRows:
    """A list's ``results`` already written as a JSON array (never rendered otherwise: any
    other renderer fails on it rather than writing something else)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


RESULTS_TAIL = '"results":[]}'


class ListJSONRenderer(JSONRenderer):
    """DRF's JSON renderer; an envelope whose last member ``results`` is :class:`RenderedRows`
    becomes the same bytes as if the rows had been rendered as objects."""

    def takes_rendered_rows(self, accepted_media_type: str | None, context: Any) -> bool:
        """Whether this renderer, so asked, writes what :func:`page_json` writes: compact,
        unindented, non-ASCII as it is, no NaN (DRF's default settings)."""
        return (
            not self.ensure_ascii
            and self.compact
            and self.strict
            and self.get_indent(accepted_media_type or "", context or {}) is None
        )

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Any = None,
    ) -> bytes:
        rows = data.get("results") if isinstance(data, dict) else None
        if not isinstance(rows, RenderedRows):
            return super().render(data, accepted_media_type, renderer_context)
        if list(data)[-1] != "results" or not self.takes_rendered_rows(
            accepted_media_type, renderer_context
        ):
            raise ValueError("rendered rows in another envelope or for another JSON form")
        envelope = super().render({**data, "results": []}, accepted_media_type, renderer_context)
        text = envelope.decode()
        assert text.endswith(RESULTS_TAIL)
        # As the renderer does for the whole text: U+2028/2029 escaped (JavaScript's subset).
        rows_text = rows.text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
        return f'{text[: -len(RESULTS_TAIL)]}"results":{rows_text}}}'.encode()


def integration_renderer_classes() -> list[type[Any]]:
    """The configured renderers, with DRF's JSON renderer replaced by :class:`ListJSONRenderer`
    (the same media type and format: content negotiation chooses as before)."""
    configured: list[type[Any]] = list(api_settings.DEFAULT_RENDERER_CLASSES)  # type: ignore[arg-type]
    return [ListJSONRenderer if r is JSONRenderer else r for r in configured]
