"""Outbound mail: a configuration's versions, what changed between two, and the rollback.

Every saved state of a configuration is a version (``outbound.mail.services``). These pages
list them, compare two field by field, and roll back to one through the same service as
``POST /api/smtp-configurations/{id}/rollback/``: the restored state — its password included —
is saved as a new version. Passwords are never shown, here or anywhere: a comparison says
only whether the password changed.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path

from outbound.console.forms.mail import SmtpConfigForm
from outbound.console.views.base import REFUSALS, ConsoleView, paginate, refusal
from outbound.core.errors import CONFLICT_MESSAGE
from outbound.core.models import EventSource
from outbound.integrations.models import AuthenticationObject
from outbound.mail import services, versions
from outbound.mail.choices import AuthorizationMethod, Security
from outbound.mail.models import SmtpConfig, SmtpConfigVersion

VIEW = "outbound_mail_setup.view"
EDIT = "outbound_mail_setup.edit"
PER_PAGE = 50
PASSWORD = versions.PASSWORD
SOURCES = dict(EventSource.choices)
# The order of the form's cards (server, sign-in, sender); a field a version holds beyond
# these comes last, the password after every other.
ORDER = (
    "host",
    "port",
    "security",
    "timeout",
    "standby",
    "description",
    "authorization_method",
    "username",
    "authentication_object",
    "sender_address",
    "sender_name",
    "reply_to_address",
    "failure_emails",
)
LABELS = {name: str(f.label) for name, f in SmtpConfigForm.base_fields.items()}
CHOICES = {
    "security": dict(Security.choices),
    "authorization_method": dict(AuthorizationMethod.choices),
}


@dataclass(frozen=True)
class Row:
    """One field of a comparison: its label, each side as shown, and whether it differs."""

    name: str
    label: str
    old: str
    new: str
    changed: bool


def _config(pk: int) -> SmtpConfig:
    return get_object_or_404(SmtpConfig, pk=pk)


def _version(config: SmtpConfig, number: Any) -> SmtpConfigVersion:
    version = versions.smtp_config_version(config, number)
    if version is None:
        raise Http404("No such version.")
    return version


def _who(version: SmtpConfigVersion) -> str:
    """The author's name as it was then ("" for the system)."""
    return version.created_by_username


def _source(version: SmtpConfigVersion) -> str:
    return SOURCES.get(version.source or "", "Unknown")


def _label(name: str) -> str:
    return LABELS.get(name) or name.replace("_", " ").capitalize()


def _shown(name: str, value: Any, objects: dict[Any, str]) -> str:
    """A non-secret value as the form would show it."""
    if name in CHOICES:
        return CHOICES[name].get(value, str(value))
    if name == "authentication_object":
        return "—" if value is None else objects.get(value, f"#{value} (deleted)")
    if name == "failure_emails":
        return ", ".join(value or []) or "—"
    if name == "timeout" and value is None:
        return "The service's default"
    if name == "standby" and value is None:
        return "Not a standby"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if value is None or value == "":
        return "—"
    return str(value)


def compare(config: SmtpConfig, old: SmtpConfigVersion, new: SmtpConfigVersion) -> list[Row]:
    """``old`` and ``new`` field by field, in the form's order, with the password last."""
    values_old, values_new = old.values or {}, new.values or {}
    names = [n for n in ORDER if n in values_old or n in values_new]
    names += sorted((set(values_old) | set(values_new)) - set(names) - {PASSWORD})
    ids = {values_old.get("authentication_object"), values_new.get("authentication_object")}
    objects = dict(
        AuthenticationObject.objects.filter(pk__in=[i for i in ids if i]).values_list("pk", "name")
    )
    rows = [
        Row(
            name=name,
            label=_label(name),
            old=_shown(name, values_old.get(name), objects),
            new=_shown(name, values_new.get(name), objects),
            changed=values_old.get(name) != values_new.get(name),
        )
        for name in names
    ]
    rows.append(
        Row(
            name=PASSWORD,
            label=_label(PASSWORD),
            old="Set" if old.has_password else "Not set",
            new="Set" if new.has_password else "Not set",
            changed=versions.password_changed(config, old, new),
        )
    )
    return rows


def _refusal(exc: Exception) -> str:
    """The service's refusal as sentences, each field's named (there is no form to put it on)."""
    if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
        return " ".join(
            f"{_label(name)}: {' '.join(msgs)}" if name != NON_FIELD_ERRORS else " ".join(msgs)
            for name, msgs in exc.message_dict.items()
        )
    if isinstance(exc, IntegrityError):  # a race lost past the service's checks
        return CONFLICT_MESSAGE
    return refusal(exc)  # type: ignore[arg-type]


def _version_row(version: SmtpConfigVersion, previous: int | None = None) -> dict[str, Any]:
    return {
        "version": version,
        "previous": previous,
        "who": _who(version),
        "source": _source(version),
        "changed": [_label(n) for n in version.changed_fields or []],
    }


class VersionListView(ConsoleView):
    """The versions, newest first, with the way to compare two and to roll back to one."""

    required = {"GET": VIEW}

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        config = _config(pk)
        numbers = list(services.smtp_config_versions(config).values_list("number", flat=True))
        older = dict(itertools.pairwise(numbers))  # each version's predecessor
        page = paginate(request, services.smtp_config_versions(config), PER_PAGE)
        context = {
            "config": config,
            "page": page,
            "rows": [_version_row(v, older.get(v.number)) for v in page.object_list],
            "numbers": numbers,
            "compare_old": numbers[1] if len(numbers) > 1 else None,
            "compare_new": numbers[0] if numbers else None,
        }
        return render(request, "console/mail/versions.html", context)


class VersionCompareView(ConsoleView):
    """``?old=<n>&new=<m>``: two versions side by side, the changed fields marked (by default
    the current version and the one before it)."""

    required = {"GET": VIEW}

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        config = _config(pk)
        numbers = list(services.smtp_config_versions(config).values_list("number", flat=True))
        if not numbers:
            raise Http404("No versions.")
        default_old = numbers[1] if len(numbers) > 1 else numbers[0]
        old = _version(config, request.GET.get("old", default_old))
        new = _version(config, request.GET.get("new", numbers[0]))
        rows = compare(config, old, new)
        context = {
            "config": config,
            "old": _version_row(old),
            "new": _version_row(new),
            "rows": rows,
            "changes": sum(r.changed for r in rows),
            "numbers": numbers,
        }
        return render(request, "console/mail/versions_compare.html", context)


class VersionRollbackView(ConsoleView):
    """GET asks — showing what the rollback will change — and POST rolls back through the
    service (the API's ``rollback``)."""

    required = {"GET": EDIT, "POST": EDIT}

    def page(
        self,
        request: HttpRequest,
        config: SmtpConfig,
        target: SmtpConfigVersion,
        *,
        error: str = "",
        status: int = 200,
    ) -> HttpResponse:
        current = _version(config, config.version)
        context = {
            "config": config,
            "target": _version_row(target),
            "current_row": _version_row(current),
            "rows": [r for r in compare(config, current, target) if r.changed],
            "error": error,
        }
        return render(request, "console/mail/versions_rollback.html", context, status=status)

    def get(self, request: HttpRequest, pk: int, number: int) -> HttpResponse:
        config = _config(pk)
        return self.page(request, config, _version(config, number))

    def post(self, request: HttpRequest, pk: int, number: int) -> HttpResponse:
        config = _config(pk)
        target = _version(config, number)
        before = config.version
        try:
            saved, version = services.smtp_config_rollback(
                config=config, version=number, actor=request.user
            )
        except REFUSALS as exc:
            config = _config(pk)
            return self.page(request, config, target, error=_refusal(exc), status=400)
        if saved.version == before:
            messages.info(
                request,
                f"Version {number} has the same settings as the current one: nothing changed.",
            )
        else:
            messages.success(
                request,
                f"{saved} rolled back to version {number}: saved as version {version.number}.",
            )
        return redirect("console:smtp-edit", saved.pk)


urlpatterns = [
    path("", VersionListView.as_view(), name="smtp-versions"),
    path("compare/", VersionCompareView.as_view(), name="smtp-version-compare"),
    path("<int:number>/rollback/", VersionRollbackView.as_view(), name="smtp-version-rollback"),
]
