"""Mapping files: what an admin declares, and what it means for one call (SPEC §6).

``load_mapping(path)`` validates a file and returns a ``Mapping``; ``check_dir(dir)`` lists
the problems of every file in a folder. ``Mapping.plan(context, object, current)`` turns
a canonical call into a ``Plan``: the activity and, per field, what is written or why not.
"""

from crmsync.mapping.engine import FieldPlan, Plan
from crmsync.mapping.loader import check_dir, load_mapping
from crmsync.mapping.model import Mapping

__all__ = ["FieldPlan", "Mapping", "Plan", "check_dir", "load_mapping"]
