"""App config for accounts: users, roles, tokens."""

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "outbound.accounts"
    label = "accounts"
