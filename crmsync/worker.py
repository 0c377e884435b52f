"""The worker process: an RQ worker on crmsync's queue (Procfile ``worker``).

A ``SimpleWorker`` (no fork per job): the connector's HTTP sessions, the CRM login and
the mapping stay warm across jobs, which the forking worker would rebuild for every
call (``bench/worker_modes.py`` measures both). Its timings are tuned so that a job whose
worker died is handed back within two minutes (SPEC §8): the started-job entry lives
``JOB_TIMEOUT + 20`` seconds, and maintenance runs every ``MAINTENANCE_INTERVAL`` (an
idle worker wakes from its queue wait every ``WORKER_TTL - 15`` seconds to do it).
SIGTERM is RQ's warm shutdown: the current call finishes, nothing is lost. With
``HAMSA_API_KEY`` set, the workers also run the reconciliation sweeps
(``crmsync.hamsa.schedule``): RQ's scheduler in them moves each due sweep onto the queue.
"""

from __future__ import annotations

from typing import Any

from rq import SimpleWorker
from rq.serializers import JSONSerializer
from rq.worker import BaseWorker

from crmsync import store
from crmsync.hamsa import schedule
from crmsync.queue import JOB_TIMEOUT
from crmsync.runtime import Runtime
from crmsync.settings import Settings

MAINTENANCE_INTERVAL = 15  # seconds between sweeps for abandoned and scheduled jobs
WORKER_TTL = 35  # seconds; RQ waits on the queue for WORKER_TTL - 15 s, so an idle worker sweeps every 20 s


class CrmsyncHeartbeat:
    """crmsync's heartbeat for an RQ worker class (put it first among the bases): a started
    job's entry lives ``JOB_TIMEOUT + 20`` seconds."""

    def get_heartbeat_ttl(self, job: Any, working_time: float = 0.0) -> int:
        return int(job.timeout or JOB_TIMEOUT) + 20


class CrmsyncWorker(CrmsyncHeartbeat, SimpleWorker):
    """The worker ``crmsync worker`` runs: no fork per job (the module docstring says why)."""


def build_worker(settings: Settings, worker_class: type[BaseWorker] = CrmsyncWorker) -> tuple[BaseWorker, Runtime]:
    """The Runtime, built and installed, and a ``worker_class`` on crmsync's queue with its
    serializer and timings (``bench/worker_modes.py`` passes RQ's forking ``Worker`` instead)."""
    runtime = Runtime.build(settings)
    Runtime.install(runtime)
    worker = worker_class(
        [store.QUEUE_NAME],
        connection=runtime.redis,
        serializer=JSONSerializer,
        maintenance_interval=MAINTENANCE_INTERVAL,
        worker_ttl=WORKER_TTL,
    )
    return worker, runtime


def run(settings: Settings, *, burst: bool = False) -> bool:
    worker, runtime = build_worker(settings)
    schedule.start(runtime.redis, settings)  # the reconciliation sweeps (crmsync.hamsa.schedule)
    return bool(worker.work(burst=burst, with_scheduler=True, logging_level=settings.log_level))
