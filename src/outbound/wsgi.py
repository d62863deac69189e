"""WSGI entry point (gunicorn serves ``outbound.wsgi:application``)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "outbound.settings")
application = get_wsgi_application()
