import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "monitoring.settings")
application = get_asgi_application()

from monitoring.apps import warm_up_analysis  # noqa: E402

warm_up_analysis("web worker")  # as in wsgi.py
