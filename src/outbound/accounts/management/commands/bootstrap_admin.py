"""``outbound bootstrap-admin``: create the first administrator from the environment."""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand

from outbound.accounts.services import ensure_bootstrap_admin


class Command(BaseCommand):
    help = "Create the admin from OUTBOUND_ADMIN_USERNAME / OUTBOUND_ADMIN_PASSWORD if missing."

    def handle(self, *args: Any, **options: Any) -> None:
        username = os.environ.get("OUTBOUND_ADMIN_USERNAME", "")
        password = os.environ.get("OUTBOUND_ADMIN_PASSWORD", "")
        if not (username and password):
            from outbound.accounts.models import User

            if not User.objects.filter(is_superuser=True).exists():
                self.stdout.write(
                    "No administrator yet. Set OUTBOUND_ADMIN_USERNAME and OUTBOUND_ADMIN_PASSWORD "
                    "and run `make run` again, or run `.venv/bin/outbound createsuperuser`."
                )
            return
        if ensure_bootstrap_admin(username=username, password=password):
            self.stdout.write(f"Created administrator {username!r}.")
        else:
            self.stdout.write(f"Administrator {username!r} already exists; left unchanged.")
