"""Claims: waiting sync jobs taken off RQ's queue by a worker that syncs them in one batch
(``crmsync.batch``), in a way that survives that worker's death.

RQ gives a worker one job at a time and has no call to take several. So a worker whose
job starts a batch takes the next waiting ``sync_call`` jobs itself, in one Lua script:
each is popped from the head of the queue and put on RQ's own *scheduled* registry, due
``HOLD`` seconds later, with RQ's ``scheduled`` status. That entry is the claim and its
safety net at once:

* the batch settles its calls, then ``settle`` takes each job off the scheduled registry
  and files it as finished, exactly where RQ files a finished job;
* the worker dies (killed, out of memory, the machine gone): nothing settles the claims,
  and when they fall due the RQ scheduler inside every worker puts the jobs back on the
  queue, where each syncs on its own. ``HOLD`` outlasts the call locks the batch held
  (``store.CALL_LOCK_TTL``) and RQ's limit on the batch's own job (``queue.JOB_TIMEOUT``),
  so a live batch has always settled before its claims fall due, and a dead one's calls are
  synced again within two minutes (SPEC §8). The activity ledger inside the connector keeps
  that second attempt from logging a call twice.

Only ``sync_call`` jobs are claimed (``queue.job_id_for`` ids); a claim stops at the first
other job at the head of the queue (a reconciliation sweep), which RQ then runs as usual.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from redis import Redis
from rq.job import Job
from rq.registry import FinishedJobRegistry, ScheduledJobRegistry
from rq.serializers import JSONSerializer
from rq.utils import utcformat

from crmsync.queue import JOB_FUNC, JOB_RESULT_TTL, JOB_TIMEOUT, SYNC_JOB_PREFIX, queue_for
from crmsync.store import CALL_LOCK_TTL

HOLD = max(CALL_LOCK_TTL, JOB_TIMEOUT) + 10  # seconds before a claimed job is RQ's again
POLL = 0.05  # seconds between two looks at the queue while a batch fills

_TAKE = """
-- KEYS: queue, scheduled registry; ARGV: most jobs, due (unix seconds), job key prefix, id prefix
local taken = {}
local prefix = ARGV[4]
while #taken < tonumber(ARGV[1]) do
  local id = redis.call('LINDEX', KEYS[1], 0)
  if not id or string.sub(id, 1, #prefix) ~= prefix then break end
  redis.call('LPOP', KEYS[1])
  if redis.call('EXISTS', ARGV[3] .. id) == 1 then  -- a job whose hash is gone is skipped, as RQ does
    redis.call('ZADD', KEYS[2], ARGV[2], id)
    redis.call('HSET', ARGV[3] .. id, 'status', 'scheduled')
    taken[#taken + 1] = id
  end
end
return taken
"""

_SETTLE = """
-- KEYS: scheduled registry, finished registry; ARGV: ended at, result ttl, finished score,
--       job key prefix, then job ids
local settled = 0
for i = 5, #ARGV do
  local id = ARGV[i]
  if redis.call('ZREM', KEYS[1], id) == 1 then
    local key = ARGV[4] .. id
    redis.call('HSET', key, 'status', 'finished', 'ended_at', ARGV[1])
    redis.call('EXPIRE', key, tonumber(ARGV[2]))
    redis.call('ZADD', KEYS[2], ARGV[3], id)
    settled = settled + 1
  end
end
return settled
"""


@dataclass(frozen=True)
class Claimed:
    """A waiting ``sync_call`` job this worker took for its batch."""

    job_id: str
    call_id: str
    trigger: str


class Claims:
    """Takes and settles claims on crmsync's queue; one per worker process."""

    def __init__(self, redis: Redis, hold: float = HOLD) -> None:
        self._redis = redis
        self._hold = hold
        queue = queue_for(redis)
        self._queue_key = queue.key
        self._scheduled = ScheduledJobRegistry(queue=queue).key
        self._finished = FinishedJobRegistry(queue=queue).key
        self._take = redis.register_script(_TAKE)
        self._settle = redis.register_script(_SETTLE)

    def gather(self, most: int, window: float) -> list[Claimed]:
        """Up to ``most`` waiting calls. None waiting: an empty list at once (a lone call
        waits for nothing); otherwise more are taken as they arrive, for at most ``window``
        seconds, until there are ``most``."""
        taken = self.take(most)
        if not taken:
            return []
        deadline = time.monotonic() + window
        while len(taken) < most and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(POLL, left))
            taken += self.take(most - len(taken))
        return taken

    def take(self, most: int) -> list[Claimed]:
        """Claim up to ``most`` sync jobs from the head of the queue, at once."""
        if most <= 0:
            return []
        due = time.time() + self._hold
        args: list[str | int | float] = [most, due, Job.redis_job_namespace_prefix, SYNC_JOB_PREFIX]
        ids = [i.decode() for i in self._take(keys=[self._queue_key, self._scheduled], args=args)]
        if not ids:
            return []
        jobs = Job.fetch_many(ids, connection=self._redis, serializer=JSONSerializer)
        claimed = []
        gone = []
        for job_id, job in zip(ids, jobs, strict=True):
            if job is None or job.func_name != JOB_FUNC or len(job.args) != 2:
                gone.append(job_id)  # expired or forgotten meanwhile: nothing to sync
                continue
            claimed.append(Claimed(job_id, str(job.args[0]), str(job.args[1])))
        if gone:
            self._redis.zrem(self._scheduled, *gone)
        return claimed

    def settle(self, claimed: list[Claimed]) -> int:
        """File the claimed jobs as finished (their calls are settled); returns how many
        were still claimed (one the scheduler already handed back is left to RQ)."""
        if not claimed:
            return 0
        ended = time.time()
        args: list[str | float] = [
            _rq_time(ended),
            JOB_RESULT_TTL,
            ended + JOB_RESULT_TTL,
            Job.redis_job_namespace_prefix,
            *(c.job_id for c in claimed),
        ]
        return int(self._settle(keys=[self._scheduled, self._finished], args=args))


def _rq_time(moment: float) -> str:
    """A moment as RQ writes its job times."""
    return utcformat(datetime.fromtimestamp(moment, tz=UTC))
