"""Users and roles: lists, forms and deletion, through the same services as ``/api/users/``.

The services' guards hold here as in the API: only a superuser changes or deletes a superuser,
nobody deletes their own account, passwords pass the configured validators. Their refusals
are shown next to the field they concern, or on the form / confirmation page.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse

from outbound.accounts import selectors, services
from outbound.accounts.models import Role, User
from outbound.console.forms.accounts import RoleForm, UserForm, permission_summary
from outbound.console.views.base import (
    ConfirmDeleteView,
    ConsoleView,
    apply_errors,
    collect_errors,
    order_by,
    ordering_param,
    paginate,
    plural,
)
from outbound.core.errors import ServiceError
from outbound.core.permissions import has_permission, user_permissions

# The services check uniqueness before saving; this covers two requests racing past that.
TAKEN_USERNAME = "A user with that username already exists."
TAKEN_ROLE = "A role with that name already exists."
PER_PAGE = 50

# ?ordering= key -> the column it sorts on
USER_ORDERINGS = {"username": "username", "email": "email", "last_login": "last_login"}
ROLE_ORDERINGS = {"name": "name", "users": "user_count"}
USER_SORTS = [("Username", "username"), ("Email", "email"), ("Last sign-in", "last_login")]
ROLE_SORTS = [("Name", "name"), ("Users", "users")]


def grantable(request: HttpRequest) -> frozenset[str] | None:
    """What the signed-in user may hand out: what they hold (everything, for a superuser)."""
    return None if request.user.is_superuser else user_permissions(request.user)


def _outranked(request: HttpRequest, user: User) -> bool:
    """Whether ``user`` holds more than the signed-in user, who then may not change or delete
    them (the service's rule)."""
    return services.outranks(user, request.user)


# --- users -------------------------------------------------------------------------------


class UserListView(ConsoleView):
    required = {"GET": "users.list"}

    def get(self, request: HttpRequest) -> HttpResponse:
        ordering = ordering_param(request, USER_ORDERINGS, "username")
        users = selectors.user_list().order_by(order_by(ordering, USER_ORDERINGS), "pk")
        page = paginate(request, users, PER_PAGE)
        for u in page:  # from the prefetched roles: no query per row
            u.outranks_me = services.outranks(u, request.user)
        return render(
            request,
            "console/accounts/user_list.html",
            {
                "page": page,
                "ordering": ordering,
                "sorts": [
                    ("Username", "username"),
                    ("Email", "email"),
                    ("Last sign-in", "last_login"),
                ],
            },
        )


def _user_page(
    request: HttpRequest, form: UserForm, *, user: User | None, status: int = 200
) -> HttpResponse:
    needed = "users.edit" if user else "users.create"
    locked = user is not None and _outranked(request, user)
    return render(
        request,
        "console/accounts/user_form.html",
        {
            "form": form,
            "account": user,  # not "user": that name is the signed-in user in every template
            "can_edit": has_permission(request.user, needed) and not locked,
            "locked": locked,
        },
        status=status,
    )


def _user_errors(form: UserForm, exc: Exception) -> int:
    """Put a service refusal on the form; the status to answer with."""
    if isinstance(exc, PermissionDenied):
        form.add_error(None, services.OUTRANKED)
        return 403
    if isinstance(exc, IntegrityError):
        form.add_error("username", TAKEN_USERNAME)
        return 400
    apply_errors(form, exc)
    return 400


class UserCreateView(ConsoleView):
    required = {"GET": "users.create", "POST": "users.create"}

    def get(self, request: HttpRequest) -> HttpResponse:
        return _user_page(request, UserForm(grantable=grantable(request)), user=None)

    def post(self, request: HttpRequest) -> HttpResponse:
        form = UserForm(request.POST, grantable=grantable(request))

        def create() -> User:
            data = form.core_data()
            return services.user_create(
                username=data.pop("username", ""),
                password=data.pop("password", ""),
                actor=request.user,
                **data,
            )

        status = 400
        if form.is_valid():
            try:
                user = create()
            except (ValidationError, ServiceError, PermissionDenied, IntegrityError) as exc:
                status = _user_errors(form, exc)
            else:
                messages.success(request, f"User {user.username} created.")
                return redirect("console:user-list")
        if status == 400:
            collect_errors(form, create)
        return _user_page(request, form, user=None, status=status)


class UserEditView(ConsoleView):
    """Everyone with ``users.view`` sees the user; ``users.edit`` gets a form to change it."""

    required = {"GET": "users.view", "POST": "users.edit"}

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        user = get_object_or_404(User, pk=pk)
        return _user_page(request, UserForm(instance=user, grantable=grantable(request)), user=user)

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        user = get_object_or_404(User, pk=pk)
        form = UserForm(request.POST, instance=user, grantable=grantable(request))

        def update() -> User:
            return services.user_update(user=user, data=form.core_data(), actor=request.user)

        status = 400
        if form.is_valid():
            try:
                user = update()
            except (ValidationError, ServiceError, PermissionDenied, IntegrityError) as exc:
                status = _user_errors(form, exc)
            else:
                if user.pk == request.user.pk:
                    # A new password of one's own ends one's other sessions, not this one.
                    update_session_auth_hash(request, user)
                messages.success(request, f"User {user.username} saved.")
                return redirect("console:user-list")
        if status == 400:
            collect_errors(form, update)
        user.refresh_from_db()  # the heading shows the saved user, not the refused input
        return _user_page(request, form, user=user, status=status)


class UserDeleteView(ConfirmDeleteView):
    required = {"GET": "users.delete", "POST": "users.delete"}
    kind = "user"
    refused_message = services.OUTRANKED

    def get_object(self, **kwargs: Any) -> User:
        return get_object_or_404(User, pk=kwargs["pk"])

    def perform_delete(self, request: HttpRequest, obj: User) -> None:
        services.user_delete(user=obj, actor=request.user)

    def label(self, obj: User) -> str:
        return obj.username

    def cancel_url(self, obj: User) -> str:
        return reverse("console:user-list")

    success_url = cancel_url

    def warning(self, request: HttpRequest, obj: User) -> str:
        if obj.pk == request.user.pk:
            return "This is your own account."
        return "Their API keys stop working at once."


# --- roles -------------------------------------------------------------------------------


class RoleListView(ConsoleView):
    required = {"GET": "roles.list"}

    def get(self, request: HttpRequest) -> HttpResponse:
        ordering = ordering_param(request, ROLE_ORDERINGS, "name")
        roles = (
            selectors.role_list()
            .annotate(user_count=Count("users"))
            .order_by(order_by(ordering, ROLE_ORDERINGS), "pk")
        )
        page = paginate(request, roles, PER_PAGE)
        rows = [{"role": r, "summary": permission_summary(r.permissions)} for r in page]
        return render(
            request,
            "console/accounts/role_list.html",
            {
                "page": page,
                "rows": rows,
                "ordering": ordering,
                "sorts": ROLE_SORTS,
            },
        )


def _role_page(
    request: HttpRequest, form: RoleForm, *, role: Role | None, status: int = 200
) -> HttpResponse:
    needed = "roles.edit" if role else "roles.create"
    return render(
        request,
        "console/accounts/role_form.html",
        {
            "form": form,
            "role": role,
            "groups": form.permission_groups(),
            "can_edit": has_permission(request.user, needed),
            "user_count": role.users.count() if role else 0,
        },
        status=status,
    )


def _role_errors(form: RoleForm, exc: Exception) -> None:
    if isinstance(exc, IntegrityError):
        form.add_error("name", TAKEN_ROLE)
    else:
        apply_errors(form, exc)


class RoleCreateView(ConsoleView):
    required = {"GET": "roles.create", "POST": "roles.create"}

    def get(self, request: HttpRequest) -> HttpResponse:
        return _role_page(request, RoleForm(grantable=grantable(request)), role=None)

    def post(self, request: HttpRequest) -> HttpResponse:
        form = RoleForm(request.POST, grantable=grantable(request))

        def create() -> Role:
            return services.role_create(**form.core_data(), actor=request.user)

        if form.is_valid():
            try:
                role = create()
            except (ValidationError, ServiceError, IntegrityError) as exc:
                _role_errors(form, exc)
            else:
                messages.success(request, f"Role {role.name} created.")
                return redirect("console:role-list")
        collect_errors(form, create)
        return _role_page(request, form, role=None, status=400)


class RoleEditView(ConsoleView):
    """Everyone with ``roles.view`` sees the role; ``roles.edit`` gets a form to change it."""

    required = {"GET": "roles.view", "POST": "roles.edit"}

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        role = get_object_or_404(Role, pk=pk)
        form = RoleForm(instance=role, grantable=grantable(request))
        return _role_page(request, form, role=role)

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        role = get_object_or_404(Role, pk=pk)
        form = RoleForm(request.POST, instance=role, grantable=grantable(request))

        def update() -> Role:
            return services.role_update(role=role, data=form.core_data(), actor=request.user)

        if form.is_valid():
            try:
                role = update()
            except (ValidationError, ServiceError, IntegrityError) as exc:
                _role_errors(form, exc)
            else:
                messages.success(request, f"Role {role.name} saved.")
                return redirect("console:role-list")
        collect_errors(form, update)
        role.refresh_from_db()
        return _role_page(request, form, role=role, status=400)


class RoleDeleteView(ConfirmDeleteView):
    required = {"GET": "roles.delete", "POST": "roles.delete"}
    kind = "role"

    def get_object(self, **kwargs: Any) -> Role:
        return get_object_or_404(Role, pk=kwargs["pk"])

    def perform_delete(self, request: HttpRequest, obj: Role) -> None:
        services.role_delete(role=obj, actor=request.user)

    def label(self, obj: Role) -> str:
        return obj.name

    def cancel_url(self, obj: Role) -> str:
        return reverse("console:role-list")

    success_url = cancel_url

    def warning(self, request: HttpRequest, obj: Role) -> str:
        count = obj.users.count()
        if not count:
            return ""
        verb = "loses" if count == 1 else "lose"
        return f"{plural(count, 'user')} {verb} the permissions this role gives."


urlpatterns = [
    path("users/", UserListView.as_view(), name="user-list"),
    path("users/new/", UserCreateView.as_view(), name="user-create"),
    path("users/<int:pk>/", UserEditView.as_view(), name="user-edit"),
    path("users/<int:pk>/delete/", UserDeleteView.as_view(), name="user-delete"),
    path("roles/", RoleListView.as_view(), name="role-list"),
    path("roles/new/", RoleCreateView.as_view(), name="role-create"),
    path("roles/<int:pk>/", RoleEditView.as_view(), name="role-edit"),
    path("roles/<int:pk>/delete/", RoleDeleteView.as_view(), name="role-delete"),
]
