"""The user and role forms: they parse and describe input; the accounts services decide."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms

from outbound.accounts.models import Role, User
from outbound.console.forms.common import ConsoleForm, model_max
from outbound.core.permissions import PERMISSIONS

PASSWORD_MAX = 128  # the API's limit (UserSerializer.password); the console accepts no more


class LockableCheckboxes(forms.CheckboxSelectMultiple):
    """Checkboxes of which some (``locked``, by value) are shown disabled."""

    locked: frozenset[str] = frozenset()

    def create_option(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        option = super().create_option(*args, **kwargs)
        if str(option["value"]) in self.locked:
            option["attrs"]["disabled"] = True
        return option


class UserForm(ConsoleForm):
    """Creates or edits one user. The password is required on create; on edit, empty keeps it.

    ``is_superuser`` is not offered: the API does not let anyone set it either.
    """

    username = forms.CharField(
        max_length=model_max(User, "username"),
        label="Username",
        strip=False,  # the service's validators judge the name as typed
        help_text="Letters, digits and @ . + - _ only.",
    )
    email = forms.EmailField(required=False, max_length=model_max(User, "email"), label="Email")
    first_name = forms.CharField(
        required=False, max_length=model_max(User, "first_name"), label="First name"
    )
    last_name = forms.CharField(
        required=False, max_length=model_max(User, "last_name"), label="Last name"
    )
    is_active = forms.BooleanField(
        required=False,
        initial=True,
        label="Active",
        help_text="An inactive user cannot sign in, and their API keys stop working.",
    )
    roles = forms.ModelMultipleChoiceField(
        queryset=Role.objects.none(),
        required=False,
        label="Roles",
        widget=LockableCheckboxes,
        help_text="The user holds every permission of every role ticked here.",
    )
    password = forms.CharField(
        max_length=PASSWORD_MAX,
        label="Password",
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )

    def __init__(
        self,
        *args: Any,
        instance: User | None = None,
        grantable: frozenset[str] | None = None,
        **kwargs: Any,
    ):
        """``grantable``: the permissions the editor holds (``None``: a superuser). Roles with
        more are shown disabled. (A user who holds such a role outranks the editor, who then
        cannot edit them at all.)"""
        self.instance = instance
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "username": instance.username,
                "email": instance.email,
                "first_name": instance.first_name,
                "last_name": instance.last_name,
                "is_active": instance.is_active,
                "roles": [r.pk for r in instance.roles.all()],
            }
        super().__init__(*args, **kwargs)
        roles = self.fields["roles"]
        assert isinstance(roles, forms.ModelMultipleChoiceField)
        roles.queryset = Role.objects.order_by("name")
        self.locked_roles: set[int] = set()
        if grantable is not None:
            self.locked_roles = {
                r.pk for r in roles.queryset if not set(r.permissions) <= grantable
            }
            assert isinstance(roles.widget, LockableCheckboxes)
            roles.widget.locked = frozenset(str(pk) for pk in self.locked_roles)
            if self.locked_roles:
                roles.help_text += " Greyed-out roles have permissions you do not hold."
        password = self.fields["password"]
        if instance is None:
            password.help_text = "At least 8 characters, not a common password."
        else:
            password.required = False
            password.label = "New password"
            password.help_text = "A password is set; leave this empty to keep it."

    def core_data(self) -> dict[str, Any]:
        """The cleaned input in the services' names; an empty password is left out (kept)."""
        data = dict(self.cleaned_data)
        data["roles"] = list(data.get("roles") or [])
        if not data.get("password"):
            data.pop("password", None)
        return data


@dataclass(frozen=True)
class PermissionBox:
    name: str  # "users.list"
    action: str  # "list"
    checked: bool
    locked: bool = False  # the editor does not hold it: shown, but they cannot change it


@dataclass(frozen=True)
class PermissionGroup:
    resource: str
    label: str
    boxes: list[PermissionBox]


# Where the console's menu names a resource differently from its permission key.
RESOURCE_LABELS = {"outbound_mail_setup": "Outbound mail", "authentication_objects": "Credentials"}


def resource_label(resource: str) -> str:
    return RESOURCE_LABELS.get(resource) or resource.replace("_", " ").capitalize()


def permission_groups(
    chosen: set[str],
    *,
    offered: frozenset[str] | None = None,
    locked: Callable[[str], bool] = lambda name: False,
) -> list[PermissionGroup]:
    """One group of checkboxes per resource, in PERMISSIONS' order (``console/
    _permission_groups.html`` renders them). ``offered`` limits the boxes (``None``: all);
    groups left empty are dropped."""
    groups = []
    for res, acts in PERMISSIONS.items():
        names = [(f"{res}.{act}", act) for act in acts]
        boxes = [
            PermissionBox(name, act, name in chosen, locked(name))
            for name, act in names
            if offered is None or name in offered
        ]
        if boxes:
            groups.append(PermissionGroup(resource=res, label=resource_label(res), boxes=boxes))
    return groups


class RoleForm(ConsoleForm):
    """A role's name and its permissions, one group of checkboxes per resource.

    The groups come from :data:`outbound.core.permissions.PERMISSIONS`, so a permission added
    there appears here without touching the console. ``grantable`` is what the editor may hand
    out (the permissions they hold; ``None``: everything, for a superuser): other boxes are
    shown disabled, and a role keeps those it already has.
    """

    name = forms.CharField(max_length=model_max(Role, "name"), label="Name")
    permissions = forms.MultipleChoiceField(
        required=False,
        label="Permissions",
        choices=[
            (f"{res}.{act}", f"{res}.{act}") for res, acts in PERMISSIONS.items() for act in acts
        ],
        widget=forms.CheckboxSelectMultiple,
        # The service's words for an unknown name (validate_permission_names).
        error_messages={"invalid_choice": '"%(value)s" is not a known permission.'},
    )

    def __init__(
        self,
        *args: Any,
        instance: Role | None = None,
        grantable: frozenset[str] | None = None,
        **kwargs: Any,
    ):
        self.instance = instance
        self.grantable = grantable
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = {"name": instance.name, "permissions": list(instance.permissions)}
        super().__init__(*args, **kwargs)

    def _locked(self, name: str) -> bool:
        return self.grantable is not None and name not in self.grantable

    def _with_locked(self, names: set[str]) -> set[str]:
        """``names`` plus the role's own permissions the editor may not touch (their boxes are
        disabled, so never submitted). A forged locked name stays in: the service refuses it."""
        kept = set(self.instance.permissions) if self.instance is not None else set()
        return names | {n for n in kept if self._locked(n)}

    def selected(self) -> set[str]:
        """The permission names ticked now: the submitted ones, else the role's own."""
        value = self["permissions"].value() or []
        return self._with_locked({str(v) for v in value})

    def permission_groups(self) -> list[PermissionGroup]:
        return permission_groups(self.selected(), locked=self._locked)

    def core_data(self) -> dict[str, Any]:
        chosen = self._with_locked(set(self.cleaned_data["permissions"]))
        if self.instance is not None and set(self.instance.permissions) == chosen:
            # The same boxes in the role's own order: the service sees (and records) no change.
            permissions = list(self.instance.permissions)
        else:
            order = [f"{res}.{act}" for res, acts in PERMISSIONS.items() for act in acts]
            permissions = [p for p in order if p in chosen]
        return {"name": self.cleaned_data["name"], "permissions": permissions}


def permission_summary(names: list[str]) -> list[str]:
    """ "Users: list, view" lines for a role's permissions, in PERMISSIONS' order."""
    held = set(names)
    lines = []
    for res, acts in PERMISSIONS.items():
        mine = [a for a in acts if f"{res}.{a}" in held]
        if not mine:
            continue
        lines.append(
            f"{resource_label(res)}: {'all' if len(mine) == len(acts) else ', '.join(mine)}"
        )
    return lines
