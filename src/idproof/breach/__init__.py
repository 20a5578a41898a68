"""The breach drill (``idproof breach-drill``): attack a full copy of the database as a thief would, and count
what is usable. See ``idproof.breach.drill`` for the attacks and ``idproof.breach.workload`` for the realistic
workload the tests run it after.

    >>> from idproof.breach import Known, load_snapshot, run_drill
    >>> report = run_drill(load_snapshot(db="sqlite:///idproof.sqlite3"), Known.load("known.json"))
    >>> report.usable, report.exit_code
    (0, 0)
"""

from idproof.breach.drill import (
    CHECKS,
    CheckResult,
    ColumnReview,
    DrillError,
    DrillReport,
    Finding,
    Known,
    Victim,
    load_config,
    run_drill,
    summarize,
)
from idproof.breach.sources import Snapshot, SourceError, load_snapshot

__all__ = [
    "CHECKS",
    "CheckResult",
    "ColumnReview",
    "DrillError",
    "DrillReport",
    "Finding",
    "Known",
    "Snapshot",
    "SourceError",
    "Victim",
    "load_config",
    "load_snapshot",
    "run_drill",
    "summarize",
]
