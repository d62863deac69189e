"""Users and roles pages: create/edit/delete through the accounts services, their refusals
next to the fields, and controls hidden (and requests refused) without permission."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from outbound.accounts import services
from outbound.accounts.models import Role, User
from outbound.core.models import Event
from outbound.core.permissions import all_permissions
from tests.conftest import PASSWORD
from tests.console.conftest import error_for

pytestmark = pytest.mark.django_db

USERS = "/console/users/"
ROLES = "/console/roles/"


def user_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "username": "carol",
        "email": "carol@example.com",
        "first_name": "Carol",
        "last_name": "Jones",
        "is_active": "on",
        "password": "a-long-Passphrase-42",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


@pytest.fixture
def mailers(admin_user: User) -> Role:
    return services.role_create(
        name="Mailers", permissions=["outbound_mail_setup.view"], actor=admin_user
    )


# --- users -------------------------------------------------------------------------------


def test_user_list_shows_roles_state_superuser_and_last_sign_in(
    console_client: Client, admin_user: User, mailers: Role
) -> None:
    user = services.user_create(username="bob", password=PASSWORD, roles=[mailers])
    services.user_update(user=user, data={"is_active": False}, actor=admin_user)
    html = console_client.get(USERS).content.decode()
    assert "bob" in html and "Mailers" in html and "Inactive" in html
    assert "Superuser" in html  # the admin
    assert "Never" in html  # bob never signed in
    assert 'href="/console/users/new/"' in html


def test_user_list_sorts(console_client: Client, admin_user: User) -> None:
    services.user_create(username="zed", password=PASSWORD, email="a@example.com")
    html = console_client.get(USERS, {"ordering": "-username"}).content.decode()
    table = html.split("<tbody>")[1]
    assert table.index(">zed<") < table.index(">admin<")
    html = console_client.get(USERS, {"ordering": "email"}).content.decode()
    table = html.split("<tbody>")[1]
    assert table.index(">zed<") < table.index(">admin<")
    assert 'aria-sort="ascending"' in html
    assert console_client.get(USERS, {"ordering": "password"}).status_code == 200  # ignored


def test_create_a_user_with_roles(console_client: Client, mailers: Role) -> None:
    other = Role.objects.create(name="Other")
    r = console_client.post(USERS + "new/", user_body(roles=[mailers.pk]))
    assert r.status_code == 302 and r["Location"] == USERS
    user = User.objects.get(username="carol")
    assert list(user.roles.all()) == [mailers] and other not in user.roles.all()
    assert user.first_name == "Carol" and user.is_active and not user.is_superuser
    assert user.check_password("a-long-Passphrase-42")
    event = Event.objects.filter(resource_type="user", resource_id=str(user.pk)).get()
    assert event.action == "created" and event.actor_username == "admin"
    assert "created" in console_client.get(USERS).content.decode()  # the message


def test_create_form_offers_roles_as_checkboxes(console_client: Client, mailers: Role) -> None:
    html = console_client.get(USERS + "new/").content.decode()
    assert f'type="checkbox" name="roles" value="{mailers.pk}"' in html
    assert 'type="password"' in html and 'autocomplete="new-password"' in html


@pytest.mark.parametrize(
    ("overrides", "field", "text"),
    [
        ({"username": "admin"}, "username", "A user with that username already exists."),
        ({"password": "short"}, "password", "too short"),
        ({"password": "password123"}, "password", "too common"),
        ({"password": ""}, "password", "This field is required."),
        ({"username": "bad name!"}, "username", "Enter a valid username"),
        ({"email": "not-an-address"}, "email", "Enter a valid email address."),
    ],
)
def test_create_errors_next_to_the_field_and_no_row(
    console_client: Client, admin_user: User, overrides: dict[str, Any], field: str, text: str
) -> None:
    before = User.objects.count()
    r = console_client.post(USERS + "new/", user_body(**overrides))
    assert r.status_code == 400
    assert text in error_for(r.content.decode(), field)
    assert User.objects.count() == before
    assert "a-long-Passphrase-42" not in r.content.decode()  # never echoed back


def test_edit_with_an_empty_password_keeps_it(
    console_client: Client, admin_user: User, mailers: Role
) -> None:
    user = services.user_create(username="dave", password=PASSWORD)
    r = console_client.get(f"{USERS}{user.pk}/")
    html = r.content.decode()
    assert r.status_code == 200 and "leave this empty to keep it" in html
    assert 'value="dave"' in html
    r = console_client.post(
        f"{USERS}{user.pk}/",
        user_body(username="david", email="", password="", roles=[mailers.pk]),
    )
    assert r.status_code == 302
    user.refresh_from_db()
    assert user.username == "david" and user.check_password(PASSWORD)
    assert list(user.roles.all()) == [mailers]
    event = Event.objects.filter(resource_type="user", action="updated").get()
    assert "password" not in event.changed_fields and "roles" in event.changed_fields


def test_edit_sets_a_new_password_and_validates_it(
    console_client: Client, admin_user: User
) -> None:
    user = services.user_create(username="erin", password=PASSWORD)
    r = console_client.post(f"{USERS}{user.pk}/", user_body(username="erin", password="abc"))
    assert r.status_code == 400 and "too short" in error_for(r.content.decode(), "password")
    user.refresh_from_db()
    assert user.check_password(PASSWORD) and user.email == ""
    r = console_client.post(f"{USERS}{user.pk}/", user_body(username="erin"))
    assert r.status_code == 302
    user.refresh_from_db()
    assert user.check_password("a-long-Passphrase-42")


def test_a_new_password_of_ones_own_keeps_this_session_and_ends_the_others(
    console_client: Client, admin_user: User
) -> None:
    other = Client()
    other.force_login(admin_user)
    body = user_body(username="admin", email="admin@example.com")
    assert console_client.post(f"{USERS}{admin_user.pk}/", body).status_code == 302
    assert console_client.get(USERS).status_code == 200
    assert other.get(USERS).status_code == 302  # signed out


def test_edit_to_a_taken_username_is_refused_inline(
    console_client: Client, admin_user: User
) -> None:
    user = services.user_create(username="frank", password=PASSWORD)
    r = console_client.post(f"{USERS}{user.pk}/", user_body(username="admin", password=""))
    assert r.status_code == 400
    html = r.content.decode()
    assert "already exists" in error_for(html, "username")
    assert "<h1>frank" in html  # the heading names the saved user
    user.refresh_from_db()
    assert user.username == "frank"


def test_delete_a_user_after_confirmation(console_client: Client, admin_user: User) -> None:
    user = services.user_create(username="gone", password=PASSWORD)
    r = console_client.get(f"{USERS}{user.pk}/delete/")
    assert r.status_code == 200 and "Delete user “gone”?" in r.content.decode()
    r = console_client.post(f"{USERS}{user.pk}/delete/")
    assert r.status_code == 302
    assert not User.objects.filter(pk=user.pk).exists()


def test_deleting_yourself_is_refused_on_the_confirm_page(
    console_client: Client, admin_user: User
) -> None:
    r = console_client.post(f"{USERS}{admin_user.pk}/delete/")
    assert r.status_code == 400
    assert "You cannot delete your own account." in r.content.decode()
    assert User.objects.filter(pk=admin_user.pk).exists()
    html = console_client.get(USERS).content.decode()
    assert f'href="/console/users/{admin_user.pk}/delete/"' not in html


@pytest.mark.parametrize("target", ["superuser", "stronger"])
def test_nobody_changes_or_deletes_a_user_who_holds_more(
    make_user: Callable[..., User],
    console_client_for: Callable[[User], Client],
    admin_user: User,
    target: str,
) -> None:
    manager = make_user("users.list", "users.view", "users.edit", "users.delete")
    other = admin_user if target == "superuser" else make_user("users.edit", "roles.delete")
    client = console_client_for(manager)
    html = client.get(USERS).content.decode()
    assert f'href="/console/users/{other.pk}/delete/"' not in html
    html = client.get(f"{USERS}{other.pk}/").content.decode()
    assert "This user holds permissions you do not hold" in html
    assert "<fieldset disabled" in html and ">Save<" not in html

    # Not even a new password: that would be taking the account over.
    body = user_body(username=other.username, email=other.email, password="a-new-Passphrase-7")
    r = client.post(f"{USERS}{other.pk}/", body)
    assert r.status_code == 403
    assert (
        "You cannot change or delete a user who holds permissions you do not hold."
        in r.content.decode()
    )
    r = client.post(f"{USERS}{other.pk}/delete/")
    assert r.status_code == 403
    other.refresh_from_db()
    assert other.check_password(PASSWORD)


# --- roles -------------------------------------------------------------------------------


def test_role_list_shows_user_count_and_a_permission_summary(
    console_client: Client, admin_user: User, mailers: Role
) -> None:
    services.user_create(username="h1", password=PASSWORD, roles=[mailers])
    services.user_create(username="h2", password=PASSWORD, roles=[mailers])
    services.role_create(name="Admins", permissions=all_permissions(), actor=admin_user)
    services.role_create(name="Viewers", permissions=["users.list", "users.view"], actor=admin_user)
    html = console_client.get(ROLES).content.decode()
    assert 'data-label="Users">2<' in html
    assert "Outbound mail: view" in html  # one of two: named
    assert "Users: list, view" in html
    assert "Integrations: all" in html


def test_role_form_has_one_fieldset_per_resource_generated_from_permissions(
    console_client: Client,
) -> None:
    html = console_client.get(ROLES + "new/").content.decode()
    for name in all_permissions():
        assert f'value="{name}"' in html
    resources = {name.split(".")[0] for name in all_permissions()}
    assert html.count('class="perm-group"') == len(resources) >= 8  # webhooks among them
    assert "<legend>Webhooks</legend>" in html
    assert "<legend>Outbound mail</legend>" in html


def test_role_permissions_round_trip(console_client: Client, admin_user: User) -> None:
    chosen = ["users.view", "integrations.list", "users.list"]
    r = console_client.post(ROLES + "new/", {"name": "Support", "permissions": chosen})
    assert r.status_code == 302
    role = Role.objects.get(name="Support")
    assert set(role.permissions) == set(chosen)

    html = console_client.get(f"{ROLES}{role.pk}/").content.decode()
    for name in chosen:
        assert f'value="{name}" id="perm-{name.replace(".", "-")}" checked' in html
    assert 'value="users.edit" id="perm-users-edit">' in html  # not checked

    r = console_client.post(
        f"{ROLES}{role.pk}/", {"name": "Support", "permissions": ["integrations.view"]}
    )
    assert r.status_code == 302
    role.refresh_from_db()
    assert role.permissions == ["integrations.view"]
    r = console_client.post(f"{ROLES}{role.pk}/", {"name": "Support"})  # none ticked
    role.refresh_from_db()
    assert r.status_code == 302 and role.permissions == []


def test_saving_unchanged_boxes_records_no_change(console_client: Client, admin_user: User) -> None:
    role = services.role_create(
        name="Order", permissions=["users.view", "users.list"], actor=admin_user
    )
    r = console_client.post(
        f"{ROLES}{role.pk}/", {"name": "Order", "permissions": ["users.list", "users.view"]}
    )
    assert r.status_code == 302
    assert not Event.objects.filter(resource_type="role", action="updated").exists()


def test_role_errors_inline_and_no_row(console_client: Client, mailers: Role) -> None:
    r = console_client.post(ROLES + "new/", {"name": "Mailers", "permissions": ["users.list"]})
    assert r.status_code == 400
    html = r.content.decode()
    assert "already exists" in error_for(html, "name")
    assert 'value="users.list" id="perm-users-list" checked' in html  # the input is kept
    r = console_client.post(ROLES + "new/", {"name": "X", "permissions": ["users.fly"]})
    assert r.status_code == 400
    assert error_for(r.content.decode(), "permissions") == '"users.fly" is not a known permission.'
    r = console_client.post(ROLES + "new/", {"name": "", "permissions": []})
    assert "This field is required." in error_for(r.content.decode(), "name")
    assert Role.objects.count() == 1


def test_delete_a_role_warns_about_its_users(
    console_client: Client, admin_user: User, mailers: Role
) -> None:
    services.user_create(username="i1", password=PASSWORD, roles=[mailers])
    html = console_client.get(f"{ROLES}{mailers.pk}/delete/").content.decode()
    assert "1 user loses the permissions this role gives." in html
    r = console_client.post(f"{ROLES}{mailers.pk}/delete/")
    assert r.status_code == 302 and not Role.objects.filter(pk=mailers.pk).exists()
    assert User.objects.filter(username="i1").exists()


# --- permissions -------------------------------------------------------------------------


def test_list_only_user_sees_no_controls(
    make_user: Callable[..., User],
    console_client_for: Callable[[User], Client],
    admin_user: User,
    mailers: Role,
) -> None:
    client = console_client_for(make_user("users.list", "roles.list"))
    html = client.get(USERS).content.decode()
    assert "admin" in html
    for href in ("/console/users/new/", f"/console/users/{admin_user.pk}/"):
        assert f'href="{href}' not in html
    assert ">Edit<" not in html and ">Delete<" not in html and ">View<" not in html
    html = client.get(ROLES).content.decode()
    assert "Mailers" in html
    assert "/console/roles/new/" not in html and f"/console/roles/{mailers.pk}/" not in html


def test_view_only_user_gets_a_disabled_form(
    make_user: Callable[..., User],
    console_client_for: Callable[[User], Client],
    admin_user: User,
    mailers: Role,
) -> None:
    client = console_client_for(make_user("users.list", "users.view", "roles.view"))
    other = services.user_create(username="jo", password=PASSWORD)
    html = client.get(f"{USERS}{other.pk}/").content.decode()
    assert "<fieldset disabled" in html
    assert ">Save<" not in html and ">Delete<" not in html
    assert 'name="password"' not in html
    html = client.get(f"{ROLES}{mailers.pk}/").content.decode()
    assert "<fieldset disabled" in html and ">Save<" not in html and ">Delete<" not in html


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "users/new/"),
        ("post", "users/new/"),
        ("post", "users/{user}/"),
        ("get", "users/{user}/delete/"),
        ("post", "users/{user}/delete/"),
        ("get", "roles/new/"),
        ("post", "roles/new/"),
        ("post", "roles/{role}/"),
        ("post", "roles/{role}/delete/"),
    ],
)
def test_forged_requests_without_permission_are_refused(
    make_user: Callable[..., User],
    console_client_for: Callable[[User], Client],
    mailers: Role,
    method: str,
    path: str,
) -> None:
    viewer = make_user("users.list", "users.view", "roles.list", "roles.view")
    other = services.user_create(username="kim", password=PASSWORD)
    url = "/console/" + path.format(user=other.pk, role=mailers.pk)
    body = {"username": "x", "password": "a-long-Passphrase-42", "name": "x"}
    r = getattr(console_client_for(viewer), method)(url, body)
    assert r.status_code == 403
    assert (
        User.objects.filter(username="kim").exists()
        and not User.objects.filter(username="x").exists()
    )
    assert (
        Role.objects.filter(name="Mailers").exists() and not Role.objects.filter(name="x").exists()
    )


def test_menu_offers_users_and_roles_only_with_list(
    make_user: Callable[..., User], console_client_for: Callable[[User], Client]
) -> None:
    html = console_client_for(make_user("integrations.list")).get("/console/history/")
    text = html.content.decode()
    assert 'href="/console/users/"' not in text and 'href="/console/roles/"' not in text
    assert console_client_for(make_user("integrations.list")).get(USERS).status_code == 403


def test_a_lost_race_on_a_unique_name_is_a_400_not_a_500(
    console_client: Client, admin_user: User, mailers: Role, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if another request had taken the name between the service's check and its save.
    monkeypatch.setattr(User, "validate_unique", lambda self, exclude=None: None)
    monkeypatch.setattr(Role, "validate_unique", lambda self, exclude=None: None)
    r = console_client.post(USERS + "new/", user_body(username="admin"))
    assert r.status_code == 400
    assert "already exists" in error_for(r.content.decode(), "username")
    r = console_client.post(ROLES + "new/", {"name": "Mailers"})
    assert r.status_code == 400
    assert "already exists" in error_for(r.content.decode(), "name")
    assert User.objects.count() == 1 and Role.objects.count() == 1


def test_nobody_grants_more_than_they_hold(
    make_user: Callable[..., User], console_client_for: Callable[[User], Client]
) -> None:
    author = console_client_for(make_user("roles.create", "users.list", "users.create"))
    r = author.post(ROLES + "new/", {"name": "Wide", "permissions": ["users.list", "users.delete"]})
    assert r.status_code == 400
    assert 'You cannot grant a permission you do not hold: "users.delete".' in error_for(
        r.content.decode(), "permissions"
    )
    assert not Role.objects.filter(name="Wide").exists()
    wide = Role.objects.create(name="Wide", permissions=["users.delete"])
    r = author.post(USERS + "new/", user_body(roles=[wide.pk]))
    assert r.status_code == 400
    assert "it has permissions you do not hold" in error_for(r.content.decode(), "roles")
    assert not User.objects.filter(username="carol").exists()


def test_permissions_one_does_not_hold_are_shown_locked_and_kept(
    make_user: Callable[..., User], console_client_for: Callable[[User], Client]
) -> None:
    role = Role.objects.create(name="Ops", permissions=["users.delete"])
    editor = console_client_for(make_user("roles.view", "roles.edit", "users.list"))
    page = editor.get(f"{ROLES}{role.pk}/").content.decode()
    locked = re.search(r'<input[^>]*value="users\.delete"[^>]*>', page)
    assert locked and "checked" in locked.group(0) and "disabled" in locked.group(0)
    free = re.search(r'<input[^>]*value="users\.list"[^>]*>', page)
    assert free and "disabled" not in free.group(0)
    # A disabled box is not submitted: the role keeps it all the same.
    r = editor.post(f"{ROLES}{role.pk}/", {"name": "Ops", "permissions": ["users.list"]})
    assert r.status_code == 302
    role.refresh_from_db()
    assert sorted(role.permissions) == ["users.delete", "users.list"]


def test_roles_one_could_not_give_are_shown_disabled(
    make_user: Callable[..., User], console_client_for: Callable[[User], Client]
) -> None:
    wide = Role.objects.create(name="Wide", permissions=["users.delete"])
    narrow = Role.objects.create(name="Narrow", permissions=["users.list"])
    editor = console_client_for(make_user("users.create", "users.list"))
    page = editor.get(f"{USERS}new/").content.decode()
    box = re.search(rf'<input[^>]*value="{wide.pk}"[^>]*>', page)
    assert box and "disabled" in box.group(0)
    free = re.search(rf'<input[^>]*value="{narrow.pk}"[^>]*>', page)
    assert free and "disabled" not in free.group(0)


def test_a_user_form_shows_every_field_error_at_once(
    console_client: Client, admin_user: User
) -> None:
    """The form refuses the email, the service the password and the username: three errors
    in one round."""
    body = user_body(username="no spaces allowed", email="not-an-address", password="123")
    r = console_client.post(USERS + "new/", body)
    assert r.status_code == 400
    page = r.content.decode()
    assert error_for(page, "email") == "Enter a valid email address."
    assert "This password is too short." in error_for(page, "password")
    assert "Enter a valid username." in error_for(page, "username")
    assert User.objects.count() == 1
    assert not Event.objects.filter(resource_type="user").exclude(resource_id=admin_user.pk)
