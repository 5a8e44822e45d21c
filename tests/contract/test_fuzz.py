"""Hostile input on every endpoint (issue 21 item 6): schemathesis generates requests for every
operation of docs/openapi.yaml, both ones that fit the document and ones that do not (negative
mode: wrong types, missing fields, bodies of another media type), and sends them to the whole
product in this process (local.inprocess, over real HTTP, Azurite, the simulators over TLS) with
one of five credentials: none, the right key for the route, a signed-in tech's session cookie with
a made-up CSRF token, that session with the real CSRF token, and a signed-in admin's session with
theirs (the last two not on unlink and sign-out, which would end the session the rest of the run
stands on).

Every answer: no 5xx, no Python traceback in the body, no ERROR log line, a status code and
content type the document lists. Every 4xx: nothing a refused request could touch changed (every
table of this product, both queues, the Syncro and Graph simulators' data); see `_snapshot`.

Bounded and reproducible for CI: FUZZ_EXAMPLES examples per operation (default 20), derandomized
(the same examples every run); FUZZ_EXAMPLES=500 for a longer local run, FUZZ_SEED to explore
other examples reproducibly."""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, status_code_conformance

from local import demo
from tests.contract.openapi_doc import METHODS, OPENAPI, load_document
from tests.realtime.webhook_support import ALEX, RealtimeStack

pytest_plugins = ["tests.realtime.webhook_support"]

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))
SEED = os.environ.get("FUZZ_SEED")
SCHEMA = schemathesis.openapi.from_path(OPENAPI)
DOCUMENT = load_document()
OPERATIONS = [
    (path, method.upper(), item[method]["x-auth"])
    for path, item in DOCUMENT["paths"].items()
    for method in METHODS
    if method in item
]
# With the real CSRF token these would sign the fixture's tech out or unlink them.
ENDS_THE_SESSION = {("/api/settings/unlink", "POST"), ("/api/settings/signout", "POST")}
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|File \"[^\"]+\.py\", line \d+")


@dataclass
class FuzzStack:
    stack: RealtimeStack
    session: requests.Session  # ALEX signed in
    csrf: str
    admin: requests.Session  # the demo dispatcher (SyncAdmin) signed in to the admin page
    admin_csrf: str

    @property
    def product(self) -> Any:
        return self.stack.product


@pytest.fixture(scope="module")
def fuzz_stack(realtime_stack: RealtimeStack) -> Iterator[FuzzStack]:
    product = realtime_stack.product
    session = product.browser()
    page = product.sign_in(session, ALEX.sign_in)
    assert page.status_code == 200, page.text
    admin = product.browser()
    overview = product.sign_in(admin, demo.DISPATCHER.sign_in, purpose="admin")
    assert overview.status_code == 200, overview.text
    realtime_stack.clear()
    yield FuzzStack(realtime_stack, session, _csrf(page.text), admin, _csrf(overview.text))
    realtime_stack.clear()
    for email in product.storage().overrides.all_overrides():  # pairings the admin fuzz made
        product.storage().overrides.remove_override(email)


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no CSRF token"
    return found.group(1)


# -- what a refused request could touch ---------------------------------------------------------


def _snapshot(fuzz: FuzzStack) -> dict[str, Any]:
    """Everything the product keeps: every row of every table under its prefix (with ETags, so a
    rewrite of the same values shows), both queues' waiting messages, the Syncro simulator's
    appointments and the Graph simulator's events and subscriptions. Two tables of counters are
    left out: the rate limits (counting refused guesses is what they are for) and the shared
    Syncro budget (a refused token was still checked with Syncro, and that request counts)."""
    from azure.data.tables import TableServiceClient

    prefix = fuzz.product.env["TABLE_PREFIX"]
    service = TableServiceClient.from_connection_string(fuzz.product.env["AzureWebJobsStorage"])
    tables = {}
    for table in service.list_tables():
        name = table.name
        if not name.startswith(prefix) or name.lower().endswith(("ratelimits", "syncrobudget")):
            continue
        rows = service.get_table_client(name).list_entities()
        tables[name] = sorted((r["PartitionKey"], r["RowKey"], r.metadata.get("etag")) for r in rows)
    syncro = fuzz.stack.syncro_sim.store
    graph = fuzz.stack.graph_sim.store
    with graph.lock:
        events = sorted((m.oid, e.id, e.change_key) for m in graph.mailboxes.values() for e in m.events.values())
    return {
        "tables": tables,
        "sync_jobs": fuzz.stack.sync_jobs(),
        "subscription_jobs": fuzz.stack.subscription_jobs(),
        "syncro": sorted((a.id, str(a.updated_at)) for a in list(syncro.appointments.values())),
        "graph_events": events,
        "graph_subscriptions": sorted(s.id for s in fuzz.stack.sim_subscriptions()),
    }


def _settle(fuzz: FuzzStack) -> None:
    """Let what an earlier accepted request set off land before the next snapshot: the Graph
    simulator's change notifications (a sync now writes events) reach our webhook, which asks for
    syncs. Otherwise they could arrive between a refused request's two snapshots."""
    assert fuzz.stack.graph_sim.notifier.wait_until_settled(timeout=30)
    assert fuzz.stack.syncro_sim.notifications.wait_idle(timeout=30)


def _snapshot_sees_the_tables(fuzz: FuzzStack) -> None:
    """The snapshot must see real tables: a prefix that matched nothing would compare {} to {}."""
    assert any(name.lower().endswith("links") for name in _snapshot(fuzz)["tables"]), "no links table seen"


# -- one request ---------------------------------------------------------------------------------


class _ErrorLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _send(fuzz: FuzzStack, case: Any, credential: str, auth: str) -> requests.Response:
    headers: dict[str, str] = {}
    session = fuzz.product.browser()
    if credential == "key" and auth in ("function", "admin"):
        headers["x-functions-key"] = fuzz.product.master_key if auth == "admin" else fuzz.product.function_key
    if credential in ("session", "session+csrf"):
        session.cookies.update(fuzz.session.cookies)
    if credential == "admin+csrf":
        session.cookies.update(fuzz.admin.cookies)
    if credential.endswith("+csrf") and isinstance(case.body, dict):
        case.body["csrf_token"] = fuzz.admin_csrf if credential == "admin+csrf" else fuzz.csrf
    return case.call(
        base_url=fuzz.product.host_url, session=session, headers=headers, allow_redirects=False, timeout=60
    )


def _describe(case: Any, credential: str, answer: requests.Response) -> str:
    body = case.body if isinstance(case.body, dict | list | str | type(None)) else repr(case.body)
    request = {"path": case.formatted_path, "query": case.query, "headers": case.headers, "body": body}
    return f"{case.method} with {credential}: {json.dumps(request, default=str)[:600]} -> {answer.status_code} {answer.text[:300]}"


@pytest.mark.timeout(900)
@pytest.mark.parametrize(("path", "method", "auth"), OPERATIONS, ids=[f"{m} {p}" for p, m, _ in OPERATIONS])
def test_hostile_input_gets_a_clear_answer_and_a_refusal_changes_nothing(
    fuzz_stack: FuzzStack, path: str, method: str, auth: str
) -> None:
    operation = SCHEMA[path][method]
    cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))
    credentials = ["none", "key", "session"]
    if (path, method) not in ENDS_THE_SESSION:
        credentials += ["session+csrf", "admin+csrf"]
    _snapshot_sees_the_tables(fuzz_stack)

    @settings(
        max_examples=EXAMPLES,
        derandomize=SEED is None,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases, credential=st.sampled_from(credentials))
    def one_request(case: Any, credential: str) -> None:
        _settle(fuzz_stack)
        before = _snapshot(fuzz_stack)
        errors = _ErrorLog()
        logging.getLogger().addHandler(errors)
        try:
            answer = _send(fuzz_stack, case, credential, auth)
        finally:
            logging.getLogger().removeHandler(errors)
        said = _describe(case, credential, answer)
        assert answer.status_code < 500, said
        assert not TRACEBACK.search(answer.text), said
        assert errors.lines == [], f"{said}\nERROR log: {errors.lines}"
        case.validate_response(answer, checks=[not_a_server_error, status_code_conformance, content_type_conformance])
        if 400 <= answer.status_code < 500:
            assert _snapshot(fuzz_stack) == before, f"a refused request changed state: {said}"

    if SEED is not None:
        one_request = seed(int(SEED))(one_request)
    one_request()


def test_sync_now_for_a_tech_who_is_not_linked_is_404_and_polls_nothing(fuzz_stack: FuzzStack) -> None:
    """Found by the fuzz: the route polled Syncro (writing the poll's cursors) before it found
    that the tech has no link, so a refused request changed state."""
    before = _snapshot(fuzz_stack)
    product = fuzz_stack.product
    answer = requests.post(
        f"{product.host_url}/api/admin/sync/{2**40 + 7}", headers={"x-functions-key": product.function_key}, timeout=60
    )
    assert answer.status_code == 404 and answer.json()["status"] == "not_linked", answer.text
    assert _snapshot(fuzz_stack) == before
