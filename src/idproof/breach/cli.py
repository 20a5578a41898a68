"""``idproof breach-drill``: attack a stolen copy of the database and say what was usable.

Exit status: 0 nothing usable found, 1 something usable found (listed with its place), 2 usage error.

Mounted in ``idproof.cli`` as ``app.command("breach-drill")(breach_drill)``; also runnable on its own as
``python -m idproof.breach.cli``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["app", "breach_drill", "render"]

app = typer.Typer(add_completion=False, help="Attack a stolen copy of the database; exit 1 if anything usable is found.")

_SHOWN = 15  # findings printed per check (all of them are in --json)


def _usage(message: str, fix: str = "") -> typer.Exit:
    typer.secho(f"error: {message}", fg="red", err=True)
    if fix:
        typer.secho(f"fix: {fix}", err=True)
    return typer.Exit(2)


def breach_drill(
    db: Annotated[str | None, typer.Option("--db", help="The stolen database: an SQLite file, sqlite:///PATH, or postgresql://... (read live).")] = None,
    pg_dump: Annotated[Path | None, typer.Option("--pg-dump", help="A plain SQL dump from pg_dump (COPY or INSERT form).")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="The service settings the attacker also has (JSON or TOML), without key files.")] = None,
    known: Annotated[Path | None, typer.Option("--known", help="KNOWN.json: what the attacker knows about some people (names, birth dates, documents, face photos).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full report as JSON.")] = False,
    profile: Annotated[str, typer.Option("--profile", help="Face engine for the face-matching attack: accurate (ArcFace 512-D and dlib 128-D vectors) or fast (ArcFace only).")] = "accurate",
    strict: Annotated[bool, typer.Option("--strict", help="Also count confirmations that need the exact uploaded file (evidence input hashes) as usable.")] = False,
) -> None:
    """Try everything an attacker with a full copy of the database would: images, float vectors, MRZ lines,
    names / birth dates / document numbers, handle recomputation without the key, face matching, sealed
    templates, evidence records, and a review of every column. Exit 0: nothing usable; 1: something usable."""
    from idproof.breach.drill import DrillError, Known, load_config, run_drill
    from idproof.breach.sources import SourceError, load_snapshot

    if (db is None) == (pg_dump is None):
        raise _usage("give exactly one of --db and --pg-dump.", "e.g. --db sqlite:///idproof.sqlite3, --db postgresql://... or --pg-dump dump.sql")
    try:
        snapshot = load_snapshot(db=db, pg_dump=pg_dump)
        known_data = Known.load(known) if known else None
        settings = load_config(config) if config else None
    except (SourceError, DrillError) as e:
        raise _usage(e.message, e.fix) from None

    def verifier():
        from idproof.api import Verifier

        return Verifier(profile=profile)

    report = run_drill(snapshot, known_data, settings, verifier=verifier, strict=strict)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        render(report)
    raise typer.Exit(report.exit_code)


def render(report, file=None) -> None:
    """The human report: one row per check, then the usable findings, the column review and the verdict."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(file=file or sys.stdout, soft_wrap=False, width=160 if file is not None else None)
    raw = f"{report.raw_bytes / 1e6:.1f} MB of raw file bytes" if report.raw_bytes else "no raw file bytes"
    console.print(f"[bold]Breach drill[/bold] on {escape(report.source)}: {report.tables} tables, {report.rows:,} rows, {raw}")
    console.print(f"scanned: {report.scope}", markup=False)
    t = Table(show_lines=True)
    t.add_column("check", style="bold")
    t.add_column("tried")
    t.add_column("usable found", justify="right")
    t.add_column("notes")
    for c in report.checks:
        usable = f"[red bold]{c.usable}[/red bold]" if c.usable else "[green]0[/green]"
        other = len(c.findings) - c.usable
        notes = list(c.notes) + ([f"{other} item(s) seen, not usable"] if other else [])
        t.add_row(escape(c.title), escape(c.tried), usable, escape("\n".join(notes)))
    console.print(t)
    for c in report.checks:
        found = [f for f in c.findings if f.usable]
        if not found:
            continue
        console.print(f"[red bold]{c.title}: {len(found)} usable[/red bold]")
        for f in found[:_SHOWN]:
            console.print(f"  {f.where}: {f.what}", markup=False)
        if len(found) > _SHOWN:
            console.print(f"  ... and {len(found) - _SHOWN} more (--json lists them all)")
    cols = Table(title="Columns", show_edge=False)
    for name in ("table.column", "values", "classification", "flag"):
        cols.add_column(name)
    for col in report.columns:
        flag = f"[red]{escape(col.flag)}[/red]" if col.usable else escape(col.flag)
        cols.add_row(escape(f"{col.table}.{col.column}"), str(col.values), escape(col.classification), flag)
    console.print(cols)
    for n in report.notes:
        console.print(f"note: {n}", markup=False)
    if report.usable:
        console.print(f"[red bold]FAIL: {report.usable} usable item(s) found.[/red bold]")
    else:
        console.print("[green bold]PASS: nothing usable found.[/green bold]")


app.command("breach-drill")(breach_drill)

if __name__ == "__main__":  # pragma: no cover
    app()
