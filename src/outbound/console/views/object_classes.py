"""Object classes and their fields. A field's permissions are its class's (as in the API).

A class's page holds its fields: the table, and a form to add one. Deleting what an
integration uses is refused by the services; their message is shown on the confirm page.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse

from outbound.console.forms.object_classes import (
    ObjectClassFieldForm,
    ObjectClassForm,
    initial_from,
)
from outbound.console.views.base import (
    ConfirmDeleteView,
    ConsoleView,
    order_by,
    ordering_param,
    paginate,
    plural,
    submit,
)
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
        obj = submit(
            form, lambda: services.object_class_create(data=form.core_data(), actor=request.user)
        )
        if obj is None:
            return self.page(request, form, status=400)
        messages.success(request, f"Object class {obj} created.")
        return redirect("console:object-class-edit", obj.pk)


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
        saved = submit(
            form,
            lambda: services.object_class_update(
                obj=obj, data=form.core_data(), actor=request.user
            ),
        )
        if saved is not None:
            messages.success(request, f"Object class {saved} saved.")
            return redirect("console:object-class-list")
        # What the user typed stays in the form; the heading keeps the saved name.
        obj.refresh_from_db()
        return _class_page(request, obj, form=form, status=400)


class ObjectClassDeleteView(ConfirmDeleteView):
    required = {"GET": DELETE, "POST": DELETE}
    kind = "object class"

    def get_object(self, **kwargs: Any) -> ObjectClass:
        return get_object_or_404(ObjectClass, pk=kwargs["pk"])

    def perform_delete(self, request: HttpRequest, obj: ObjectClass) -> None:
        services.object_class_delete(obj=obj, actor=request.user)

    def cancel_url(self, obj: ObjectClass) -> str:
        return reverse("console:object-class-edit", args=[obj.pk])

    def success_url(self, obj: ObjectClass) -> str:
        return reverse("console:object-class-list")

    def warning(self, request: HttpRequest, obj: ObjectClass) -> str:
        parts = []
        if fields := obj.fields.count():
            parts.append(f"Its {plural(fields, 'field')} will be deleted too.")
        if used := obj.integrations.count():
            parts.append(
                f"It is used by {plural(used, 'integration')}: deleting it will be refused."
            )
        return " ".join(parts)


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
        field = submit(
            form,
            lambda: services.object_class_field_create(
                object_class=object_class, data=form.core_data(), actor=request.user
            ),
        )
        if field is None:
            return _field_page(request, object_class, form, field=None, can_edit=True, status=400)
        messages.success(request, f"Field {field} added to {object_class}.")
        return redirect(reverse("console:object-class-edit", args=[pk]) + "#fields")


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
        saved = submit(
            form,
            lambda: services.object_class_field_update(
                obj=field, data=form.core_data(), actor=request.user
            ),
        )
        if saved is not None:
            messages.success(request, f"Field {saved} saved.")
            return redirect(reverse("console:object-class-edit", args=[pk]) + "#fields")
        field.refresh_from_db()
        return _field_page(
            request, field.object_class, form, field=field, can_edit=True, status=400
        )


class FieldDeleteView(ConfirmDeleteView):
    required = {"GET": DELETE, "POST": DELETE}
    kind = "field"

    def get_object(self, **kwargs: Any) -> ObjectClassField:
        return get_object_or_404(
            ObjectClassField, pk=kwargs["field_pk"], object_class_id=kwargs["pk"]
        )

    def perform_delete(self, request: HttpRequest, obj: ObjectClassField) -> None:
        services.object_class_field_delete(obj=obj, actor=request.user)

    def label(self, obj: ObjectClassField) -> str:
        return f"{obj.object_class} · {obj}"

    def cancel_url(self, obj: ObjectClassField) -> str:
        return reverse("console:object-class-edit", args=[obj.object_class_id]) + "#fields"

    success_url = cancel_url


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
