"""``outbound bootstrap-admin``: create the first administrator from the environment.

``make run`` runs it before starting the server, so a value the account rules refuse (a weak
password, a malformed address) is one line on stderr naming the setting and the rule, and
exit status 1 — not a traceback.
"""

from __future__ import annotations

import os
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand

from outbound.accounts.services import ensure_bootstrap_admin

# The account field each setting becomes, so a refusal names what to change.
SETTINGS = {
    "username": "OUTBOUND_ADMIN_USERNAME",
    "password": "OUTBOUND_ADMIN_PASSWORD",
    "email": "OUTBOUND_ADMIN_EMAIL",
}


def _one_line(error: ValidationError) -> str:
    if not hasattr(error, "error_dict"):
        return " ".join(error.messages)
    return "; ".join(
        f"{SETTINGS.get(field, field)}: {' '.join(ValidationError(errors).messages)}"
        for field, errors in error.error_dict.items()
    )


class Command(BaseCommand):
    help = (
        "Create the admin from OUTBOUND_ADMIN_USERNAME / OUTBOUND_ADMIN_PASSWORD "
        "(and OUTBOUND_ADMIN_EMAIL) if missing."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        username = os.environ.get("OUTBOUND_ADMIN_USERNAME", "")
        password = os.environ.get("OUTBOUND_ADMIN_PASSWORD", "")
        email = os.environ.get("OUTBOUND_ADMIN_EMAIL", "").strip()
        if not (username and password):
            from outbound.accounts.models import User

            if not User.objects.filter(is_superuser=True).exists():
                self.stdout.write(
                    "No administrator yet. Set OUTBOUND_ADMIN_USERNAME and OUTBOUND_ADMIN_PASSWORD "
                    "and run `make run` again, or run `.venv/bin/outbound createsuperuser`."
                )
            return
        try:
            outcome = ensure_bootstrap_admin(username=username, password=password, email=email)
        except ValidationError as exc:
            # SystemExit rather than CommandError: the line reads the same whether the
            # command runs from the shell or from call_command, without a class name in front.
            self.stderr.write(_one_line(exc))
            raise SystemExit(1) from None
        if outcome == "created":
            self.stdout.write(f"Created administrator {username!r}.")
        elif outcome == "email_set":
            self.stdout.write(f"Administrator {username!r} already exists; set its email address.")
        else:
            self.stdout.write(f"Administrator {username!r} already exists; left unchanged.")
