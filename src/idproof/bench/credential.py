"""`idproof bench credential`: issue / present / verify per second on one core, and sizes, of the person-held
credentials: BBS with a per-verifier pseudonym and SD-JWT VC, beside the ``sd-jwt`` PyPI package (the IETF
reference implementation) measured in the same run.

What is measured, per implementation, each in its own worker process (:mod:`idproof.bench._credential_worker`)
pinned to **one CPU** with ``os.sched_setaffinity`` (all workers on the same CPU; only one works at a time):

- **BBS, library** (``idproof.credential.bbs.pseudonym``, BLS12-381-SHA-256): 6 signed attributes, the holder's
  nym share committed blindly. *issue* = the issuer's ``blind_sign`` of a holder's commitment (it checks the
  commitment's proof of correctness; the holder's ``commit`` and ``verify_and_finalize`` are setup, untimed);
  *present* = ``proof_gen`` disclosing 1 attribute with the pseudonym for ``context_id`` = the service id;
  *verify* = ``proof_verify`` of a different proof each time (the presentations made in the present phase,
  cycled).
- **BBS, product path** (when ``idproof.credential.issuer`` / ``wallet`` / ``verify`` are importable):
  ``BbsIssuer.issue`` (request dict in, response dict out), ``Wallet.present`` (proof + base64url JSON
  presentation) and ``verify.verify`` (parse, checks, proof). The credential has 7 attributes; the holder shows
  ``age_over_18`` and ``expires`` is always disclosed, so 2 are disclosed.
- **SD-JWT VC** (``idproof.credential.sdjwt``), ES256 issuer and holder keys, 6 claims all selectively
  disclosable (with decoys), 1 disclosed, KB-JWT. *issue* = ``issue_batch`` with one holder key (and, ours only,
  with batches of 10: per credential); *present* = ``present``; *verify* = ``verify`` against the issuer
  metadata (the issuer key imported once and cached, as a verifier would) of a different presentation each time.
- **Peer, same run**: the ``sd-jwt`` package (``SDJWTIssuer`` / ``SDJWTHolder`` / ``SDJWTVerifier``), ES256, the
  same 6 claims (each ``SDObj``), decoys on, KB-JWT, the issuer public key imported once. Its verifier checks the
  signatures, ``aud``, ``nonce`` and ``sd_hash`` but not ``exp``/``nbf``/``iat``, the KB-JWT's age, ``typ`` of
  the credential or the issuer key's validity window: it does less than ours.

Each phase runs for ``seconds`` (at least 3 operations), ``repeats`` times; the implementations take turns phase
by phase within each repeat (order reversed on odd repeats), so they share the machine's state. Figures: per
second = the median of the repeats' rates (operations / wall time); p50 / p95 latency over every operation of
every repeat; sizes in bytes of real outputs (UTF-8 / ASCII strings as sent). Holder keys, issuance requests
and the first credential are made before timing. For each phase the bench reads the pinned CPU's busy time
(``/proc/stat``) and the worker's own CPU time: the difference is other processes on that core, flagged when
large, as is a worker that got less than its core.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from idproof.bench._progress import Bars

IMPLS = ("bbs_library", "bbs_product", "sdjwt", "sdjwt_peer")
PHASES = {  # phases per implementation, in the order they run within a repeat
    "bbs_library": ("issue", "present", "verify"),
    "bbs_product": ("issue", "present", "verify"),
    "sdjwt": ("issue", "issue_batch", "present", "verify"),
    "sdjwt_peer": ("issue", "present", "verify"),
}
PHASE_ORDER = ("issue", "issue_batch", "present", "verify")
PEER = "sd-jwt"
PEER_VERSION = "0.10.4"  # requirements/bench-peer.txt
GOAL_BBS_VERIFY_PER_S = 150  # on one core of the project's 2-core machine
GOAL_SDJWT_VERIFY_PER_S = 2000
OTHER_ON_CORE = 0.10  # share of the pinned core taken by other processes during a phase above which it is flagged
MIN_CORE_SHARE = 0.90  # worker CPU time / wall time below which a phase is flagged (preempted, throttled, stolen)
SETUP_TIMEOUT_S = 180


def available() -> dict[str, bool]:
    """Which implementations can run here: the product path needs issuer, wallet and verify; the peer the
    ``sd-jwt`` package (looked up, not imported: only its worker imports it)."""
    def has(mod: str) -> bool:
        try:
            return importlib.util.find_spec(mod) is not None
        except (ImportError, ValueError):
            return False

    return {
        "bbs_library": True,
        "bbs_product": all(has(f"idproof.credential.{m}") for m in ("issuer", "wallet", "verify", "attributes")),
        "sdjwt": has("idproof.credential.sdjwt"),
        "sdjwt_peer": has("sd_jwt"),
    }


# --- machine and load -------------------------------------------------------------------------------------------


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover
        return None


def machine_info(cpu: int) -> dict[str, Any]:
    model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:  # pragma: no cover
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count()
    return {
        "cpus": os.cpu_count(), "cpus_usable": usable, "cpu_model": model, "pinned_cpu": cpu,
        "platform": platform.platform(), "python": platform.python_version(), "loadavg_at_start": _loadavg(),
    }  # fmt: skip


def pick_cpu() -> int:
    """The CPU the workers are pinned to: the highest-numbered one this process may use (CPU 0 usually takes
    more interrupts); -1 where affinity is not supported (then nothing is pinned)."""
    try:
        return max(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return -1


def _cpu_ticks(cpu: int) -> tuple[float, float] | None:
    """(busy seconds, stolen seconds) of one CPU so far, from /proc/stat; None if unreadable."""
    if cpu < 0:
        return None
    try:
        tck = os.sysconf("SC_CLK_TCK")
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith(f"cpu{cpu} "):
                f = [int(x) for x in line.split()[1:]]
                user, nice, system, _idle, _iowait, irq, softirq = f[:7]
                steal = f[7] if len(f) > 7 else 0
                return (user + nice + system + irq + softirq) / tck, steal / tck
    except (OSError, ValueError):  # pragma: no cover
        pass
    return None


# --- workers ----------------------------------------------------------------------------------------------------


class Worker:
    """One implementation in its own interpreter, pinned to ``cpu``; commands over a pipe."""

    def __init__(self, impl: str, cpu: int, tmp: Path) -> None:
        self.impl = impl
        self.err_path = tmp / f"{impl}.stderr"
        src = str(Path(__file__).resolve().parents[2])
        env = os.environ | {
            "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "RAYON_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p),
            "PYTHONWARNINGS": "ignore", "PYTHONHASHSEED": "0",
        }  # fmt: skip
        self._err = self.err_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "idproof.bench._credential_worker", impl, str(cpu)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._err, env=env, text=True,
        )  # fmt: skip

    def ask(self, cmd: dict) -> dict:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(json.dumps(cmd) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass  # reported below
        while True:
            line = self.proc.stdout.readline()
            if not line:
                self.proc.wait()
                tail = self.err_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"bench worker {self.impl!r} exited ({self.proc.returncode}):\n{tail}")
            if line.startswith("@@result "):
                answer = json.loads(line[len("@@result ") :])
                if "error" in answer:
                    raise RuntimeError(f"bench worker {self.impl!r} failed on {cmd.get('op')}:\n{answer['error']}")
                return answer

    def close(self) -> None:
        try:
            if self.proc.poll() is None and self.proc.stdin is not None:
                self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except (BrokenPipeError, OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        finally:
            self._err.close()


def _phase(worker: Worker, phase: str, seconds: float, cpu: int) -> dict[str, Any]:
    """One timed phase, with what else ran on the pinned core meanwhile."""
    a = _cpu_ticks(cpu)
    t0 = time.monotonic()
    res = worker.ask({"op": "phase", "phase": phase, "seconds": seconds})
    elapsed = time.monotonic() - t0
    b = _cpu_ticks(cpu)
    res["core_share"] = round(res["cpu_s"] / res["wall_s"], 3) if res["wall_s"] > 0 else None
    res["other_on_core"] = None
    res["steal"] = None
    if a is not None and b is not None and elapsed > 0:
        # the core's busy time over the command (round trip included) minus the worker's CPU time in the phase
        res["other_on_core"] = round(max(0.0, (b[0] - a[0]) - res["cpu_s"]) / elapsed, 3)
        res["steal"] = round((b[1] - a[1]) / elapsed, 3)
    return res


# --- figures ----------------------------------------------------------------------------------------------------


def _pct(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    pos = (len(v) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def phase_figures(runs: list[dict]) -> dict[str, Any]:
    """Per second: the median of the repeats' rates; latencies over every operation of every repeat."""
    rates = [r["ops"] / r["wall_s"] for r in runs if r["wall_s"] > 0]
    lat = [x for r in runs for x in r["latencies"]]
    return {
        "per_s": round(statistics.median(rates), 1),
        "per_s_repeats": [round(x, 1) for x in rates],
        "p50_ms": round(_pct(lat, 50) * 1000, 3),
        "p95_ms": round(_pct(lat, 95) * 1000, 3),
        "ops": sum(r["ops"] for r in runs),
        "seconds": round(sum(r["wall_s"] for r in runs), 3),
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else round(a / b, 2)


def _rate(section: dict | None, phase: str) -> float | None:
    if not section or phase not in section:
        return None
    return section[phase]["per_s"]


def sdjwt_ratios(ours: dict, peer: dict) -> dict[str, Any]:
    """idproof / peer: above 1 means idproof does more per second (or, for sizes, sends more bytes)."""
    return {
        "issue_per_s": _ratio(_rate(ours, "issue"), _rate(peer, "issue")),
        "present_per_s": _ratio(_rate(ours, "present"), _rate(peer, "present")),
        "verify_per_s": _ratio(_rate(ours, "verify"), _rate(peer, "verify")),
        "credential_bytes": _ratio(ours["sizes"].get("credential_bytes"), peer["sizes"].get("credential_bytes")),
        "presentation_bytes": _ratio(ours["sizes"].get("presentation_bytes"), peer["sizes"].get("presentation_bytes")),
    }


def goals(ours: dict[str, Any]) -> dict[str, Any]:
    """BBS verify >= 150/s (on the product path when it ran, else the library) and SD-JWT verify >= 2,000/s."""
    bbs_on = "bbs_product" if ours.get("bbs_product") else "bbs_library"
    bbs = _rate(ours.get(bbs_on), "verify")
    lib = _rate(ours.get("bbs_library"), "verify")
    sd = _rate(ours.get("sdjwt"), "verify")
    return {
        "bbs_verify_per_s_goal": GOAL_BBS_VERIFY_PER_S,
        "bbs_verify_measured_on": bbs_on,
        "bbs_verify_per_s": bbs,
        "bbs_verify_met": None if bbs is None else bbs >= GOAL_BBS_VERIFY_PER_S,
        "bbs_library_verify_met": None if lib is None else lib >= GOAL_BBS_VERIFY_PER_S,
        "sdjwt_verify_per_s_goal": GOAL_SDJWT_VERIFY_PER_S,
        "sdjwt_verify_per_s": sd,
        "sdjwt_verify_met": None if sd is None else sd >= GOAL_SDJWT_VERIFY_PER_S,
    }


# --- the bench --------------------------------------------------------------------------------------------------


def run(*, json_out: bool = False, seconds: float = 2.0, repeats: int = 3, console: Any = None,
        only: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the bench and return one JSON-ready object; print the tables (to ``console``, a rich Console, or
    stdout) and a progress bar unless ``json_out`` (the caller prints the JSON). ``only``: a subset of
    :data:`IMPLS` (tests); by default every implementation that can run here."""
    if seconds <= 0 or repeats < 1:
        raise ValueError("seconds must be positive and repeats at least 1")
    can = available()
    wanted = [i for i in IMPLS if (only is None or i in only) and can[i]]
    cpu = pick_cpu()
    machine = machine_info(cpu)
    notes: list[str] = []
    setups: dict[str, dict] = {}
    runs: dict[str, dict[str, list[dict]]] = {i: {p: [] for p in PHASES[i]} for i in wanted}
    failed: dict[str, str] = {}
    steps = len(wanted) + repeats * sum(len(PHASES[i]) for i in wanted)
    bar = Bars(not json_out, console=console, description_width=40, time_remaining=False, transient=True)
    step = bar.stepper("credential bench", steps)
    with tempfile.TemporaryDirectory(prefix="idproof-bench-credential-") as tmp:
        workers: dict[str, Worker] = {}
        try:
            for impl in wanted:
                workers[impl] = Worker(impl, cpu, Path(tmp))
            for impl in wanted:
                step(f"setup {impl}")
                try:
                    setups[impl] = workers[impl].ask({"op": "setup"})
                except RuntimeError as e:
                    if impl != "bbs_product":
                        raise
                    failed[impl] = str(e).strip().splitlines()[-1][:300]  # the product path is optional
            live = [i for i in wanted if i in setups]
            for rep in range(repeats):
                order = live if rep % 2 == 0 else live[::-1]
                for phase in PHASE_ORDER:
                    for impl in order:
                        if phase not in PHASES[impl] or impl in failed:
                            continue
                        step(f"{impl} {phase} ({rep + 1}/{repeats})")
                        try:
                            runs[impl][phase].append(_phase(workers[impl], phase, seconds, cpu))
                        except RuntimeError as e:
                            if impl != "bbs_product":
                                raise
                            failed[impl] = str(e).strip().splitlines()[-1][:300]
        finally:
            for w in workers.values():
                w.close()
            bar.close()
    machine["loadavg_at_end"] = _loadavg()

    section: dict[str, dict[str, Any]] = {}
    for impl in wanted:
        if impl in failed or impl not in setups:
            continue
        s = {p: phase_figures(r) for p, r in runs[impl].items()}
        s["sizes"] = setups[impl]["sizes"]
        s["info"] = setups[impl]["info"]
        section[impl] = s
    ours = {k: v for k, v in section.items() if k != "sdjwt_peer"}
    peer = section.get("sdjwt_peer")
    if peer is not None:
        peer["sdjwt"] = {k: peer.pop(k) for k in list(peer) if k in PHASES["sdjwt_peer"] or k == "sizes"}
        peer_section: dict[str, Any] | None = {"version": peer["info"].get("version"), **peer}
    else:
        peer_section = None
    ratios = {}
    if peer_section is not None and "sdjwt" in ours:
        ratios[f"sdjwt_vs_{PEER}"] = sdjwt_ratios(ours["sdjwt"], peer_section["sdjwt"])
    goal = goals(ours)

    # notes: what was measured, and what could disturb it
    contended = {f"{impl}:{p}#{k + 1}": r["other_on_core"] for impl, ph in runs.items() for p, rs in ph.items()
                 for k, r in enumerate(rs) if (r.get("other_on_core") or 0) > OTHER_ON_CORE}
    starved = {f"{impl}:{p}#{k + 1}": r["core_share"] for impl, ph in runs.items() for p, rs in ph.items()
               for k, r in enumerate(rs) if r.get("core_share") is not None and r["core_share"] < MIN_CORE_SHARE}
    stolen = {f"{impl}:{p}#{k + 1}": r["steal"] for impl, ph in runs.items() for p, rs in ph.items()
              for k, r in enumerate(rs) if (r.get("steal") or 0) > OTHER_ON_CORE}
    if contended:
        notes.append(f"WARNING: other processes ran on the pinned CPU {cpu} during these phases (share of the core): "
                     f"{contended}; the figures of those phases are lower than on an idle core. Re-run when the "
                     "machine is idle.")
    if starved:
        notes.append(f"WARNING: the worker got less than {MIN_CORE_SHARE:.0%} of its core in these phases "
                     f"(its CPU time / wall time): {starved}.")
    if stolen:
        notes.append(f"WARNING: the hypervisor stole time from CPU {cpu} in these phases (share): {stolen}.")
    if "bbs_product" in failed:
        notes.append(f"WARNING: the BBS product path (issuer / wallet / verify) failed and is left out: "
                     f"{failed['bbs_product']}")
    notes.append(
        f"Machine: {machine['cpus']} CPU cores ({machine['cpu_model'] or 'unknown model'}); every worker is pinned to "
        f"CPU {cpu} and only one works at a time, so the figures are per second on one core. On a shared machine "
        f"timings are noisy (load average at start {machine['loadavg_at_start']}, at end {machine['loadavg_at_end']}): "
        "compare the figures of one run, and repeat a run before trusting a difference of a few per cent.")
    notes.append(
        f"Each phase ran {seconds:g} s (at least 3 operations) x {repeats} repeats, implementations taking turns "
        "phase by phase; per second = median of the repeats' rates; p50/p95 over every operation.")
    notes.append(
        "BBS library: issue = the issuer's blind_sign of a holder's commitment (checks its proof of correctness; the "
        "holder's commit and verify_and_finalize are not timed); present = proof_gen, 6 attributes, 1 disclosed, "
        "pseudonym for context_id = the service id; verify = proof_verify of a different proof each time; proof "
        "bytes are the raw proof (the pseudonym, 48 bytes, travels beside it).")
    if "bbs_product" in ours:
        notes.append(
            "BBS product: BbsIssuer.issue / Wallet.present / verify.verify with their JSON and base64url encoding; "
            "the credential has 7 attributes and 2 are disclosed (age_over_18, and expires, always disclosed); "
            "the goal is judged on this path.")
    elif "bbs_product" not in failed and not can["bbs_product"]:
        notes.append("BBS product path (idproof.credential.issuer / wallet / verify) not importable here: only the raw "
                     "library was measured and the BBS goal is judged on it.")
    if "sdjwt" in ours:
        notes.append(
            "SD-JWT (ours and the peer's): ES256, 6 claims all selectively disclosable with decoys, 1 disclosed, "
            "KB-JWT; issue = one credential per call (ours also in batches of 10, per credential); verify "
            "of a different presentation each time, the issuer key imported once.")
    elif not can["sdjwt"]:
        notes.append("idproof.credential.sdjwt is not importable here: no SD-JWT figures for idproof.")
    if peer_section is not None:
        notes.append(
            f"Peer {PEER} {peer_section['version']} (benchmark only: idproof never imports it) does less work per "
            "operation than ours: its verifier checks the issuer and KB-JWT signatures, aud, nonce and sd_hash, but not "
            "exp/nbf/iat, the KB-JWT's age, the credential's typ or the issuer key's validity window; its holder does "
            "not check the credential's structure or that the holder key matches cnf before presenting. Its sizes vary "
            "from credential to credential (2 to 5 random decoys; ours pads to a multiple of 4 digests).")
    elif not can["sdjwt_peer"]:
        notes.append(f"Peer {PEER} not installed (pip install --no-deps -r requirements/bench-peer.txt): no peer "
                     "figures and no ratios.")
    else:
        notes.append(f"Peer {PEER} left out of this run (only={list(only or [])}): no peer figures and no ratios.")

    result: dict[str, Any] = {
        "bench": "credential",
        "data": "synthetic: one identity (6 claims: given_name, family_name, birthdate, age_over_18, nationality, "
                "document_number), fresh keys per run",
        "counts": {"seconds_per_phase": seconds, "repeats": repeats,
                   "phases": {i: list(PHASES[i]) for i in section}},
        "machine": machine,
        "idproof": ours,
        "peers": {PEER: peer_section},
        "ratios": ratios,
        "goals": goal,
        "phases": {i: {p: [{k: v for k, v in r.items() if k != "latencies"} for r in rs] for p, rs in ph.items()}
                   for i, ph in runs.items() if i in section},
        "setup": {i: {"seconds": round(s["setup_s"], 3), "cpu": s.get("cpu")} for i, s in setups.items()},
        "notes": notes,
    }
    if not json_out:
        print_human(result, console)
    return result


# --- human output -----------------------------------------------------------------------------------------------


def _f(x: Any, unit: str = "") -> str:
    if x is None:
        return "—"
    if unit == "ms":
        return f"{x:.2f} ms"
    if unit == "B":
        return f"{x:,} B"
    return f"{x:,.0f}"


def print_human(result: dict, console: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console(width=None if sys.stdout.isatty() else 150)
    m, c = result["machine"], result["counts"]
    ours, peer = result["idproof"], (result["peers"].get(PEER) or {}).get("sdjwt")
    console.print(f"[bold]idproof bench credential[/bold] — one core (pinned CPU {m['pinned_cpu']} of {m['cpus']}, "
                  f"{m['cpu_model']}); {c['seconds_per_phase']:g} s per phase x {c['repeats']} repeats")
    rows = (
        ("issue/s", "issue", "per_s", ""), ("present/s", "present", "per_s", ""), ("verify/s", "verify", "per_s", ""),
        ("issue p50", "issue", "p50_ms", "ms"), ("present p50", "present", "p50_ms", "ms"),
        ("verify p50", "verify", "p50_ms", "ms"),
    )

    def cell(sec: dict | None, phase: str, key: str, unit: str) -> str:
        return _f((sec or {}).get(phase, {}).get(key), unit)

    if "bbs_library" in ours:
        lib, prod = ours["bbs_library"], ours.get("bbs_product")
        t = Table(title="BBS with per-verifier pseudonym (BLS12-381-SHA-256): 6 attributes, 1 disclosed",
                  title_justify="left")
        t.add_column("figure")
        t.add_column("idproof library (bbs.pseudonym)", justify="right")
        if prod:
            t.add_column("idproof product (issuer / wallet / verify, JSON; 7 attr., 2 disclosed)", justify="right")
        for label, phase, key, unit in rows:
            t.add_row(label, cell(lib, phase, key, unit), *([cell(prod, phase, key, unit)] if prod else []))
        size_rows = (("proof", "proof_bytes"), ("pseudonym", "pseudonym_bytes"), ("signature", "signature_bytes"),
                     ("issuance request (commitment)", "commitment_bytes"), ("full presentation", "presentation_bytes"),
                     ("issuer response", "issuance_response_bytes"))
        for label, key in size_rows:
            a, b = lib["sizes"].get(key), (prod or {}).get("sizes", {}).get(key)
            if key == "commitment_bytes" and prod:
                b = prod["sizes"].get("issuance_request_bytes")
            if a is None and b is None:
                continue
            t.add_row(f"size: {label}", _f(a, "B"), *([_f(b, "B")] if prod else []))
        console.print(t)
    if "sdjwt" in ours:
        sd = ours["sdjwt"]
        t = Table(title="SD-JWT VC (ES256, KB-JWT): 6 claims, 1 disclosed", title_justify="left",
                  caption="idproof / peer: above 1 on the rates means idproof does more per second; below 1 on "
                          "latencies and sizes means idproof takes less" if peer else None, caption_justify="left")
        t.add_column("figure")
        t.add_column("idproof (credential.sdjwt)", justify="right")
        if peer:
            t.add_column(f"{PEER} {result['peers'][PEER]['version']} (peer)", justify="right")
            t.add_column("idproof / peer", justify="right")
        for label, phase, key, unit in rows:
            a, b = sd.get(phase, {}).get(key), (peer or {}).get(phase, {}).get(key)
            ratio = _ratio(a, b)
            t.add_row(label, _f(a, unit), *([_f(b, unit), "—" if ratio is None else f"{ratio:.2f}x"] if peer else []))
        if "issue_batch" in sd:
            t.add_row(f"issue/s, batches of {sd['info'].get('issue_batch_size')}", _f(sd["issue_batch"]["per_s"]),
                      *(["—", "—"] if peer else []))
        for label, key in (("issued credential", "credential_bytes"), ("presentation with KB-JWT", "presentation_bytes"),
                           ("of which KB-JWT", "kb_jwt_bytes")):
            a, b = sd["sizes"].get(key), (peer or {}).get("sizes", {}).get(key)
            ratio = _ratio(a, b)
            t.add_row(f"size: {label}", _f(a, "B"),
                      *([_f(b, "B"), "—" if ratio is None else f"{ratio:.2f}x"] if peer else []))
        console.print(t)
    g = result["goals"]

    def met(v: bool | None) -> str:
        return "—" if v is None else "[green]met[/green]" if v else "[red]not met[/red]"

    console.print(f"  goal BBS verify ≥ {g['bbs_verify_per_s_goal']}/s on one core ({g['bbs_verify_measured_on']}): "
                  f"{met(g['bbs_verify_met'])} ({_f(g['bbs_verify_per_s'])}/s)")
    console.print(f"  goal SD-JWT verify ≥ {g['sdjwt_verify_per_s_goal']:,}/s on one core: {met(g['sdjwt_verify_met'])} "
                  f"({_f(g['sdjwt_verify_per_s'])}/s)")
    for n in result["notes"]:
        console.print(f"[yellow]- {n}[/yellow]" if n.startswith("WARNING") else f"[dim]- {n}[/dim]")
