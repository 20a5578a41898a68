"""``idproof evidence``: make the signing key, check a signed record offline, show one unverified.

``verify`` trusts nothing in the file but what the public key it is given confirms: exit 0 and the record's
summary when it verifies, exit 1 with the reason (malformed, alg_not_eddsa, wrong_typ, unknown_kid,
bad_signature, invalid_record, bad_public_key, unreadable) otherwise.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Signed evidence of each decision: make the key, verify a record offline.")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as e:
        typer.secho(f"error: unreadable: cannot read {path} ({type(e).__name__})", fg="red", err=True)
        raise typer.Exit(1) from None


@app.command()
def keygen(path: Annotated[Path, typer.Argument(help="Where to write the private key (PKCS#8 PEM, mode 0600).")]) -> None:
    """Make the service's Ed25519 evidence key: PATH (private, 0600, never overwritten) and PATH.pub (public
    PEM, to publish); prints the public JWK with its kid."""
    from idproof.evidence.record import EvidenceError
    from idproof.evidence.signing import EvidenceKey

    pub = Path(str(path) + ".pub")
    if pub.exists():
        typer.secho(f"error: {pub} already exists; not overwriting a key.", fg="red", err=True)
        raise typer.Exit(2)
    key = EvidenceKey.generate()
    try:
        key.save(path)
    except (EvidenceError, OSError) as e:
        typer.secho(f"error: {e}", fg="red", err=True)
        raise typer.Exit(2) from None
    fd = os.open(pub, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(key.public_pem())
    typer.echo(f"private key: {path} (keep it secret; never in the database)")
    typer.echo(f"public key:  {pub} (publish it)")
    typer.echo(json.dumps(key.public_jwk(), indent=2))


@app.command()
def verify(
    file: Annotated[Path, typer.Argument(help="The signed evidence record (compact JWS).")],
    public_key: Annotated[Path, typer.Option("--public-key", help="The service's evidence public key: PEM, JWK or JWK set file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the verified record as JSON.")] = False,
) -> None:
    """Check a signed evidence record offline against the service's published public key."""
    from idproof.evidence.record import EvidenceError
    from idproof.evidence.signing import unverified_parts, verify_evidence

    token = _read(file)
    try:
        record = verify_evidence(token, public_key)
    except EvidenceError as e:
        typer.secho(f"NOT VERIFIED: {e.reason}: {e}", fg="red", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(record.to_dict(), indent=2, sort_keys=True, ensure_ascii=False))
        return
    header, _ = unverified_parts(token)  # verified above: the kid is the key's thumbprint
    typer.secho(f"VERIFIED: signed by key {header['kid']}", fg="green")
    for line in record.summary_lines():
        typer.echo(f"  {line}")


@app.command()
def show(file: Annotated[Path, typer.Argument(help="The signed evidence record (compact JWS).")]) -> None:
    """Print a record's header and payload WITHOUT checking the signature (use `verify` to rely on it)."""
    from idproof.evidence.record import EvidenceError
    from idproof.evidence.signing import unverified_parts

    try:
        header, payload = unverified_parts(_read(file))
    except EvidenceError as e:
        typer.secho(f"error: {e.reason}: {e}", fg="red", err=True)
        raise typer.Exit(1) from None
    typer.secho("NOT VERIFIED: signature not checked; run `idproof evidence verify FILE --public-key KEY` to rely on it.",
                fg="yellow")
    typer.echo(json.dumps({"header": header, "payload": payload}, indent=2, sort_keys=True, ensure_ascii=False))
