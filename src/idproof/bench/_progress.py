"""Rich progress bars on stderr for the benchmarks (or nothing, when the caller prints JSON)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Bars:
    """Progress bars that start on creation and stop on ``close``; every call is a no-op when disabled."""

    def __init__(self, enabled: bool, *, console: Any = None, description_width: int = 34,
                 time_remaining: bool = True, transient: bool = False) -> None:
        self.progress = None
        if enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            cols = [TextColumn(f"{{task.description:<{description_width}}}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
            if time_remaining:
                cols.append(TimeRemainingColumn())
            self.progress = Progress(*cols, console=console or Console(stderr=True), transient=transient)
            self.progress.start()

    def task(self, name: str, total: int) -> Callable[[int], None]:
        """A new bar; the returned function sets how many of ``total`` are done."""
        if self.progress is None:
            return lambda done: None
        t = self.progress.add_task(name, total=total)
        return lambda done: self.progress.update(t, completed=min(done, total))

    def stepper(self, name: str, total: int) -> Callable[[str], None]:
        """A new bar advanced one step per call, each call naming the step now running."""
        if self.progress is None:
            return lambda description: None
        t = self.progress.add_task(name, total=total)
        return lambda description: self.progress.update(t, advance=1, description=description)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
