import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "monitoring.settings")
application = get_wsgi_application()

# Each gunicorn worker loads the analysis (the rules' machine code, scipy) as it starts, not on
# the first patient's submission.
from monitoring.apps import warm_up_analysis  # noqa: E402

warm_up_analysis("web worker")
