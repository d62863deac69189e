"""Object classes and their fields. A field's permissions are its class's (as in the API).

A class's page holds its fields: the table, and a form to add one. Deleting what an
integration uses is refused by the services; their message is shown on the confirm page.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.db.models import Count, ProtectedError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse

from outbound.console.forms.object_classes import (
    ObjectClassFieldForm,
    ObjectClassForm,
    initial_from,
)
from outbound.console.views.base import (
    ConsoleView,
    apply_errors,
    order_by,
    ordering_param,
    paginate,
)
from outbound.console.views.credentials import CONFLICT, refusal
from outbound.core.errors import ServiceError
from outbound.core.permissions import has_permission
from outbound.integrations import selectors, services
from outbound.integrations.models import ObjectClass, ObjectClassField

LIST = "object_classes.list"
VIEW = "object_classes.view"
CREATE = "object_classes.create"
EDIT = "object_classes.edit"
DELETE = "object_classes.delete"
ORDERINGS = {"name": "name", "fields": "field_count", "modified": "modified_at"}
SORTS = [("Name", "name"), ("Fields", "fields"), ("Changed", "modified")]
REFUSED = (ValidationError, ServiceError, ProtectedError)


def _save_errors(form: ObjectClassForm | ObjectClassFieldForm, exc: Exception) -> None:
    if isinstance(exc, IntegrityError):  # the services map unique names; anything else lost a race
        form.add_error(None, CONFLICT)
    else:
        apply_errors(form, exc)


class ObjectClassListView(ConsoleView):
    required = {"GET": LIST}

    def get(self, request: HttpRequest) -> HttpResponse:
        rows = selectors.object_class_list().annotate(
            field_count=Count("fields", distinct=True),
            integration_count=Count("integrations", distinct=True),
        )
        ordering = ordering_param(request, ORDERINGS, "name")
        rows = rows.order_by(order_by(ordering, ORDERINGS), "name")
        return render(
            request,
            "console/object_classes/list.html",
            {"page": paginate(request, rows), "ordering": ordering, "sorts": SORTS},
        )


class ObjectClassCreateView(ConsoleView):
    """After creating, the class's page opens, to add its fields."""

    required = {"GET": CREATE, "POST": CREATE}

    def page(self, request: HttpRequest, form: ObjectClassForm, status: int = 200) -> HttpResponse:
        return render(request, "console/object_classes/create.html", {"form": form}, status=status)

    def get(self, request: HttpRequest) -> HttpResponse:
        return self.page(request, ObjectClassForm())

    def post(self, request: HttpRequest) -> HttpResponse:
        form = ObjectClassForm(request.POST)
        if form.is_valid():
            try:
                obj = services.object_class_create(data=form.core_data(), actor=request.user)
            except (*REFUSED, IntegrityError) as exc:
                _save_errors(form, exc)
            else:
                messages.success(request, f"Object class {obj} created.")
                return redirect("console:object-class-edit", obj.pk)
        return self.page(request, form, status=400)


def _class_page(
    request: HttpRequest,
    obj: ObjectClass,
    *,
    form: ObjectClassForm | None = None,
    status: int = 200,
) -> HttpResponse:
    """The class (a form for ``edit``, read-only otherwise), its fields and the add form."""
    return render(
        request,
        "console/object_classes/edit.html",
        {
            "obj": obj,
            "form": form or ObjectClassForm(initial=initial_from(obj)),
            # Its own ids: the class's form on the same page has a "name" too.
            "field_form": ObjectClassFieldForm(auto_id="new-field-%s"),
            "fields": selectors.object_class_field_list(obj),
            "integration_count": obj.integrations.count(),
            "can_edit": has_permission(request.user, EDIT),
        },
        status=status,
    )


class ObjectClassEditView(ConsoleView):
    required = {"GET": VIEW, "POST": EDIT}

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        return _class_page(request, get_object_or_404(ObjectClass, pk=pk))

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        obj = get_object_or_404(ObjectClass, pk=pk)
        form = ObjectClassForm(request.POST)
        if form.is_valid():
            try:
                obj = services.object_class_update(
                    obj=obj, data=form.core_data(), actor=request.user
                )
            except (*REFUSED, IntegrityError) as exc:
                _save_errors(form, exc)
            else:
                messages.success(request, f"Object class {obj} saved.")
                return redirect("console:object-class-list")
        # What the user typed stays in the form; the heading keeps the saved name.
        obj.refresh_from_db()
        return _class_page(request, obj, form=form, status=400)


class ObjectClassDeleteView(ConsoleView):
    required = {"GET": DELETE, "POST": DELETE}

    def context(self, obj: ObjectClass) -> dict[str, Any]:
        fields = obj.fields.count()
        used = obj.integrations.count()
        parts = []
        if fields:
            parts.append(f"Its {fields} field{'s' if fields != 1 else ''} will be deleted too.")
        if used:
            parts.append(
                f"It is used by {used} integration{'s' if used != 1 else ''}: "
                "deleting it will be refused."
            )
        return {
            "kind": "object class",
            "object_label": str(obj),
            "cancel_url": reverse("console:object-class-edit", args=[obj.pk]),
            "warning": " ".join(parts),
        }

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        obj = get_object_or_404(ObjectClass, pk=pk)
        return render(request, "console/confirm_delete.html", self.context(obj))

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        obj = get_object_or_404(ObjectClass, pk=pk)
        label = str(obj)
        try:
            services.object_class_delete(obj=obj, actor=request.user)
        except REFUSED as exc:
            ctx = {**self.context(obj), "error": refusal(exc)}
            return render(request, "console/confirm_delete.html", ctx, status=400)
        messages.success(request, f"Object class {label} deleted.")
        return redirect("console:object-class-list")


# --- fields ---------------------------------------------------------------------------------


def _field_page(
    request: HttpRequest,
    object_class: ObjectClass,
    form: ObjectClassFieldForm,
    *,
    field: ObjectClassField | None,
    can_edit: bool,
    status: int = 200,
) -> HttpResponse:
    return render(
        request,
        "console/object_classes/field_form.html",
        {"object_class": object_class, "form": form, "field": field, "can_edit": can_edit},
        status=status,
    )


class FieldCreateView(ConsoleView):
    """Posted from the class's page; errors are shown on a page of their own (no JS needed)."""

    required = {"GET": CREATE, "POST": CREATE}

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        object_class = get_object_or_404(ObjectClass, pk=pk)
        return _field_page(request, object_class, ObjectClassFieldForm(), field=None, can_edit=True)

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        object_class = get_object_or_404(ObjectClass, pk=pk)
        form = ObjectClassFieldForm(request.POST)
        if form.is_valid():
            try:
                field = services.object_class_field_create(
                    object_class=object_class, data=form.core_data(), actor=request.user
                )
            except (*REFUSED, IntegrityError) as exc:
                _save_errors(form, exc)
            else:
                messages.success(request, f"Field {field} added to {object_class}.")
                return redirect(reverse("console:object-class-edit", args=[pk]) + "#fields")
        return _field_page(request, object_class, form, field=None, can_edit=True, status=400)


class FieldEditView(ConsoleView):
    required = {"GET": VIEW, "POST": EDIT}

    def get(self, request: HttpRequest, pk: int, field_pk: int) -> HttpResponse:
        field = get_object_or_404(ObjectClassField, pk=field_pk, object_class_id=pk)
        form = ObjectClassFieldForm(initial=initial_from(field))
        return _field_page(
            request,
            field.object_class,
            form,
            field=field,
            can_edit=has_permission(request.user, EDIT),
        )

    def post(self, request: HttpRequest, pk: int, field_pk: int) -> HttpResponse:
        field = get_object_or_404(ObjectClassField, pk=field_pk, object_class_id=pk)
        form = ObjectClassFieldForm(request.POST)
        if form.is_valid():
            try:
                field = services.object_class_field_update(
                    obj=field, data=form.core_data(), actor=request.user
                )
            except (*REFUSED, IntegrityError) as exc:
                _save_errors(form, exc)
            else:
                messages.success(request, f"Field {field} saved.")
                return redirect(reverse("console:object-class-edit", args=[pk]) + "#fields")
        field.refresh_from_db()
        return _field_page(
            request, field.object_class, form, field=field, can_edit=True, status=400
        )


class FieldDeleteView(ConsoleView):
    required = {"GET": DELETE, "POST": DELETE}

    def context(self, field: ObjectClassField) -> dict[str, Any]:
        return {
            "kind": "field",
            "object_label": f"{field.object_class} · {field}",
            "cancel_url": reverse("console:object-class-edit", args=[field.object_class_id])
            + "#fields",
            "warning": "",
        }

    def get(self, request: HttpRequest, pk: int, field_pk: int) -> HttpResponse:
        field = get_object_or_404(ObjectClassField, pk=field_pk, object_class_id=pk)
        return render(request, "console/confirm_delete.html", self.context(field))

    def post(self, request: HttpRequest, pk: int, field_pk: int) -> HttpResponse:
        field = get_object_or_404(ObjectClassField, pk=field_pk, object_class_id=pk)
        label = str(field)
        try:
            services.object_class_field_delete(obj=field, actor=request.user)
        except REFUSED as exc:
            ctx = {**self.context(field), "error": refusal(exc)}
            return render(request, "console/confirm_delete.html", ctx, status=400)
        messages.success(request, f"Field {label} deleted.")
        return redirect(reverse("console:object-class-edit", args=[pk]) + "#fields")


urlpatterns = [
    path("", ObjectClassListView.as_view(), name="object-class-list"),
    path("new/", ObjectClassCreateView.as_view(), name="object-class-create"),
    path("<int:pk>/", ObjectClassEditView.as_view(), name="object-class-edit"),
    path("<int:pk>/delete/", ObjectClassDeleteView.as_view(), name="object-class-delete"),
    path("<int:pk>/fields/new/", FieldCreateView.as_view(), name="object-class-field-create"),
    path(
        "<int:pk>/fields/<int:field_pk>/",
        FieldEditView.as_view(),
        name="object-class-field-edit",
    ),
    path(
        "<int:pk>/fields/<int:field_pk>/delete/",
        FieldDeleteView.as_view(),
        name="object-class-field-delete",
    ),
]
