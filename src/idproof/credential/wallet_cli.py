"""``idproof wallet``: the holder's side on the command line (and a verifier's one-off check).

The passphrase comes from IDPROOF_WALLET_PASSPHRASE or a hidden prompt, never from an option (it would end up
in the shell history and in ``ps``). The wallet file is ``--wallet`` / IDPROOF_WALLET, or the user data dir.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn, Optional

import typer
from platformdirs import user_data_dir

from idproof.errors import IdproofError

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Your own credential: keep it encrypted, show only what a service asks for.")

PASSPHRASE_ENV = "IDPROOF_WALLET_PASSPHRASE"


def default_wallet_path() -> Path:
    return Path(user_data_dir("idproof")) / "wallet.json"


WalletOption = Annotated[Optional[Path], typer.Option(
    "--wallet", envvar="IDPROOF_WALLET", show_default=False,
    help="Wallet file (default: IDPROOF_WALLET, else wallet.json in your user data directory).")]


def _fail(error: IdproofError | str) -> NoReturn:
    if isinstance(error, IdproofError):
        reason = getattr(error, "reason", error.code)
        text = f"{reason}: {error.message}" + (f" {error.fix}" if error.fix else "")
    else:
        text = error
    typer.secho(f"error: {text}", fg="red", err=True)
    raise typer.Exit(1)


def _passphrase(*, confirm: bool = False) -> str:
    value = os.environ.get(PASSPHRASE_ENV)
    if value:
        return value
    return typer.prompt("Wallet passphrase", hide_input=True, confirmation_prompt=confirm)


def _open(path: Optional[Path]):
    from idproof.credential.wallet import Wallet

    try:
        return Wallet.open(path or default_wallet_path(), _passphrase())
    except IdproofError as exc:
        _fail(exc)


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        _fail(f"cannot read {what} from {path}: {exc.__class__.__name__}. Give the JSON file as saved.")


@app.command()
def init(path: Annotated[Optional[Path], typer.Argument(help="Where to create the wallet file.")] = None,
         wallet: WalletOption = None) -> None:
    """Create a new, empty, encrypted wallet (never overwrites one)."""
    from idproof.credential.wallet import Wallet

    target = path or wallet or default_wallet_path()
    try:
        Wallet.create(target, _passphrase(confirm=True))
    except IdproofError as exc:
        _fail(exc)
    typer.echo(f"Created wallet {target}")


@app.command()
def request(wallet: WalletOption = None,
            out: Annotated[Optional[Path], typer.Option(help="Write the request here instead of printing it.")] = None
            ) -> None:
    """Make an issuance request to send to the issuer; its secret half is kept (encrypted) in the wallet until
    `accept`."""
    w = _open(wallet)
    try:
        text = json.dumps(w.issuance_request(keep_pending=True))
    except IdproofError as exc:
        _fail(exc)
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text + "\n", encoding="utf-8")
        typer.echo(f"Wrote {out}")


@app.command()
def accept(response: Annotated[Path, typer.Option(help="The issuer's credential response (JSON file).")],
           issuer_metadata: Annotated[Path, typer.Option(help="The issuer's published metadata (JSON file).")],
           wallet: WalletOption = None) -> None:
    """Check an issued credential against the issuer's key and your request, and store it."""
    resp = _read_json(response, "the credential response")
    meta = _read_json(issuer_metadata, "the issuer metadata")
    w = _open(wallet)
    try:
        cred = w.accept(resp, meta)
    except IdproofError as exc:
        _fail(exc)
    typer.echo(f"Stored credential from {cred.issuer} (key {cred.kid}), valid through {cred.expires.isoformat()}")


@app.command()
def show(wallet: WalletOption = None,
         as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """What the wallet holds: each credential's issuer, key id, expiry and attributes."""
    w = _open(wallet)
    creds = [c.to_public_dict() for c in w.credentials()]
    if as_json:
        typer.echo(json.dumps({"bbs": creds, "sdjwt_unused": w.sdjwt_remaining()}, indent=2, ensure_ascii=False))
        return
    if not creds:
        typer.echo("No BBS credential.")
    for c in creds:
        typer.echo(f"{c['issuer']}  key {c['kid']}  valid through {c['expires']}")
        for name, value in c["claims"].items():
            typer.echo(f"  {name}: {json.dumps(value, ensure_ascii=False)}")
    typer.echo(f"Unused SD-JWT credentials: {w.sdjwt_remaining()}")


@app.command()
def present(to: Annotated[str, typer.Option("--to", help="The service id the verifier gave (its audience).")],
            nonce: Annotated[str, typer.Option(help="The nonce the verifier gave.")],
            show: Annotated[Optional[list[str]], typer.Option(
                "--show", help="An attribute to disclose (repeatable); expires is always disclosed.")] = None,
            fmt: Annotated[str, typer.Option("--format", help="bbs (unlinkable, reusable) or sd-jwt (once-only).")]
            = "bbs",
            wallet: WalletOption = None) -> None:
    """Print a fresh presentation for one service, disclosing only the attributes named with --show."""
    if fmt not in ("bbs", "sd-jwt"):
        _fail("--format must be bbs or sd-jwt.")
    w = _open(wallet)
    try:
        text = (w.present if fmt == "bbs" else w.present_sdjwt)(to, nonce, show or [])
    except IdproofError as exc:
        _fail(exc)
    typer.echo(text)


@app.command()
def verify(presentation: Annotated[str, typer.Argument(help="The presentation, or - to read it from stdin.")],
           issuer_metadata: Annotated[Path, typer.Option(help="The issuer's published metadata (JSON file).")],
           service: Annotated[str, typer.Option(help="Your service id (the audience the proof must be for).")],
           nonce: Annotated[str, typer.Option(help="The nonce you gave the holder.")]) -> None:
    """Verify a BBS presentation offline; prints the disclosed attributes and the pseudonym as JSON, or exits 1
    with the reason."""
    from idproof.credential.verify import verify as verify_presentation

    text = sys.stdin.read().strip() if presentation == "-" else presentation
    meta = _read_json(issuer_metadata, "the issuer metadata")
    try:
        result = verify_presentation(text, meta, service_id=service, nonce=nonce)
    except IdproofError as exc:
        _fail(exc)
    typer.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
