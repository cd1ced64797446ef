"""The export task: takes a job id and calls the service (docs/exports.md, "Background jobs").

With the default immediate backend it runs inline when ``export_start``'s transaction commits;
with the database worker (``manage.py db_worker``) or RQ (``manage.py rqworker --job-class
django_tasks_rq.Job``) it runs in a worker, and the job row carries status and progress.
"""

from __future__ import annotations

from django_tasks import task

from monitoring.exports import services as export_services


@task()
def export_job_run(job_id: int) -> str:
    return export_services.export_job_run(job_id=job_id).status
