"""Property-based run of the whole OpenAPI schema against the app, in process (no network).

Bounded: at most 50 generated cases per operation. Every response must be a documented status with a
documented content type and a body that fits the schema; none may be a 5xx; every 4xx is problem+json.
Requests carry valid credentials (the role each path needs) so the generated bodies reach the handlers.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from idproof.credential.attributes import CredentialAttributes
from idproof.credential.issuer import IssuerKey
from idproof.decision import Decision, HolderFacts
from idproof.document.chip_issue import TestPKI
from idproof.reasons import Outcome
from idproof.registry.handles import RegistryKey
from idproof.service import Settings, create_app
from idproof.service.credential_offers import SdJwtIssuerKey
from idproof.service.problems import PROBLEM_BASE

KEY = RegistryKey(b"idproof-schemathesis-registry-key!!!")
CREDENTIALS: dict[str, str] = {}
STATS: dict[str, dict[int, int]] = {}  # operation + mode -> status -> count
SEEDS: dict = {}


def _verifier(key, policy):
    from idproof.api import Verifier

    return Verifier(registry_key=key, document_policy=policy)


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    data = tmp_path_factory.mktemp("schemathesis")
    (data / "csca.pem").write_bytes(TestPKI.generate().csca_pem())
    app = create_app(Settings(
        registry_key=KEY, db_url=f"sqlite:///{data / 'registry.sqlite3'}", verifier_factory=_verifier,
        max_upload_bytes=256 * 1024, max_sessions=10_000, csca=(data / "csca.pem",), proofing_max_age=timedelta(hours=1),
        credential_issuer="http://localhost", bbs_issuer_key=IssuerKey.generate(), sdjwt_issuer_key=SdJwtIssuerKey.generate(),
    ))
    registry = app.state.idproof.registry
    CREDENTIALS["operator"] = registry.add_operator("fuzz-operator")[1]
    CREDENTIALS["auditor"] = registry.add_operator("fuzz-auditor", "auditor")[1]
    # a person with an accepted proofing and one number, so /v1/me has something to answer with
    accepted = Decision(Outcome.ACCEPT, (), None, "test", "test", {}, {}, subject_handle="ab" * 32)
    record = registry.record_proofing(accepted)
    CREDENTIALS["person"] = registry.issue_person_token(record.id)
    operator = registry.authenticate(CREDENTIALS["operator"])
    registry.bind("+441632960001", record.id, operator)
    SEEDS.update(app=app, operator=operator, proofing_id=record.id)
    # a credential offer redeemed for an access token, so /v1/credential cases get past the token check
    offers = app.state.idproof.credentials.offers
    offers.ttl_s = 3600
    attributes = CredentialAttributes.from_holder(HolderFacts("ANNA", "TEST", "UTO", date(1990, 1, 1)))
    CREDENTIALS["access"] = offers.redeem(offers.offer(attributes, app.state.idproof.credentials.configurations))[0]
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def _seed(case, mode) -> str | None:
    """Point generated cases at live state, so they reach the upload parsers and the registry rules:
    a fresh session of this operator (with a document, for the selfie step), an accepted proofing to bind."""
    if "session_id" in (case.path_parameters or {}):
        sessions = SEEDS["app"].state.idproof.sessions
        s = sessions.create(SEEDS["operator"].operator_id)
        if case.path.endswith("/selfie"):
            sessions.put(s.id, SEEDS["operator"].operator_id, document=b"\xff\xd8\xff\xe0 not really a JPEG")
        case.path_parameters = {**case.path_parameters, "session_id": s.id}
        return s.id
    if (mode is GenerationMode.POSITIVE and case.method == "POST" and case.path == "/v1/numbers"
            and isinstance(case.body, dict)):
        case.body = {**case.body, "proofing_id": SEEDS["proofing_id"]}
    return None


@schemathesis.check
def problem_json_errors(ctx, response, case):
    """Every 4xx/5xx is RFC 9457 problem+json with type/title/status/detail/code/fix."""
    if response.status_code < 400:
        return None
    ctype = response.headers.get("content-type", [""])
    ctype = ctype[0] if isinstance(ctype, list) else ctype
    assert ctype.startswith("application/problem+json"), f"{response.status_code} is {ctype!r}"
    body = response.json()
    assert body["status"] == response.status_code
    assert body["type"] == PROBLEM_BASE + body["code"]
    assert body["title"] and body["detail"] and body["fix"]
    return True


def _auth(path: str) -> dict[str, str]:
    who = ("auditor" if path.startswith("/v1/audit") else "person" if path.startswith("/v1/me")
           else "access" if path.startswith("/v1/credential") else "operator")
    return {"Authorization": f"Bearer {CREDENTIALS[who]}"}


MAX_EXAMPLES = 25  # per operation and generation mode (valid data, invalid data): 50 per operation
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          problem_json_errors]


def _fuzz(operation, mode: GenerationMode) -> None:
    label = f"{operation.label} {mode.value}"

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def run(case):
        sid = _seed(case, mode)
        response = case.call(headers=_auth(case.path))
        if sid is not None:
            SEEDS["app"].state.idproof.sessions.drop(sid, SEEDS["operator"].operator_id)
        counts = STATS.setdefault(label, {})
        counts[response.status_code] = counts.get(response.status_code, 0) + 1
        case.validate_response(response, checks=CHECKS)

    run()


def test_every_operation_against_its_schema(api_schema):
    """Driven from hypothesis directly (schemathesis' lazy pytest loader does not run on pytest 9)."""
    failures: list[str] = []
    operations = [r.ok() for r in api_schema.get_all_operations()]
    assert len(operations) >= 14
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz(operation, mode)
            except Unsatisfiable:  # nothing to make invalid (e.g. /healthz has no parameters)
                continue
            except Exception as e:  # noqa: BLE001 - collect every operation's failure, then report them all
                failures.append(f"{operation.label} [{mode.value}]: {type(e).__name__}: {str(e)[:2000]}")
    assert not failures, "\n\n".join(failures)
    # the seeding works: valid cases get past auth and into the handlers of every operation
    for label, statuses in STATS.items():
        if label.endswith("positive"):
            assert set(statuses) - {401, 403}, (label, statuses)
