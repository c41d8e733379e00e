"""WSGI entry point (gunicorn oms.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "oms.settings.production")
application = get_wsgi_application()
