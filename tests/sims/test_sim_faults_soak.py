"""Fault knobs the soak (`bench/soak.py`) needs, on a real simulator over TLS: a timeout before
or after the service acted (every simulator's ``/_sim/faults``), and a Syncro API token revoked
(``DELETE /_sim/tokens/{token}``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from local.serve import RunningServer, serve_in_thread
from local.sims.control import SimControl
from local.sims.syncro import SyncroSim
from local.tls import TlsFiles

TOKEN, OTHER = "tok-tina", "tok-joe"
TINA, JOE = 1_300_102, 1_300_101
SEED = {
    "account": {"subdomain": "acme", "time_zone": "America/Los_Angeles"},
    "users": [
        {"id": JOE, "email": "joe@acme.test", "full_name": "Joe Doe", "admin": True},
        {"id": TINA, "email": "tina@acme.test", "full_name": "Tina Tech"},
    ],
    "tokens": [{"token": TOKEN, "user_id": TINA}, {"token": OTHER, "user_id": JOE}],
}
CREATE = {
    "summary": "Visit",
    "start_at": "2026-03-10T09:00:00-07:00",
    "end_at": "2026-03-10T10:00:00-07:00",
    "user_id": TINA,
}


@pytest.fixture
def syncro(tls_files: TlsFiles) -> Iterator[tuple[RunningServer, requests.Session]]:
    sim = SyncroSim(control=SimControl())
    sim.seed(SEED)
    server = serve_in_thread(sim.app, tls=tls_files, name="syncro-faults")
    session = requests.Session()
    session.trust_env = False
    session.verify = str(tls_files.ca_bundle)
    yield server, session
    session.close()
    server.stop()
    sim.close()


def _summaries(server: RunningServer, session: requests.Session) -> list[str]:
    return [a["summary"] for a in session.get(f"{server.url}/_sim/appointments", timeout=10).json()["appointments"]]


def _create(server: RunningServer, session: requests.Session, *, read_timeout: float) -> requests.Response:
    return session.post(
        f"{server.url}/api/v1/appointments",
        json=CREATE,
        headers={"Authorization": f"Bearer {OTHER}"},
        timeout=(5, read_timeout),
    )


def test_a_timeout_after_the_work_holds_the_answer_back_but_the_work_is_done(
    syncro: tuple[RunningServer, requests.Session],
) -> None:
    server, session = syncro
    rule = {"method": "POST", "path": "/appointments$", "timeout": "after", "delay_seconds": 2}
    assert session.post(f"{server.url}/_sim/faults", json=rule, timeout=10).status_code == 201
    with pytest.raises(requests.ReadTimeout):
        _create(server, session, read_timeout=0.5)
    assert _summaries(server, session) == ["Visit"]  # done, though the client never heard
    assert _create(server, session, read_timeout=10).status_code == 201  # the rule was used once
    assert _summaries(server, session) == ["Visit", "Visit"]


def test_a_timeout_before_the_work_does_nothing(syncro: tuple[RunningServer, requests.Session]) -> None:
    server, session = syncro
    rule = {"method": "POST", "path": "/appointments$", "timeout": "before", "delay_seconds": 1}
    assert session.post(f"{server.url}/_sim/faults", json=rule, timeout=10).status_code == 201
    with pytest.raises(requests.ReadTimeout):
        _create(server, session, read_timeout=0.3)
    assert _summaries(server, session) == []
    # A client patient enough sees the gateway's 504, and still nothing was done.
    rule["times"] = 1
    session.post(f"{server.url}/_sim/faults", json=rule, timeout=10)
    assert _create(server, session, read_timeout=10).status_code == 504
    assert _summaries(server, session) == []


@pytest.mark.parametrize(
    "rule",
    [
        {"method": "POST", "path": "x", "timeout": "during"},
        {"method": "POST", "path": "x", "timeout": "after", "delay_seconds": -1},
        {"method": "POST", "path": "x", "timeout": "after", "delay_seconds": "soon"},
    ],
)
def test_a_bad_timeout_rule_is_refused(syncro: tuple[RunningServer, requests.Session], rule: dict) -> None:
    server, session = syncro
    answer = session.post(f"{server.url}/_sim/faults", json=rule, timeout=10)
    assert answer.status_code == 400, answer.text
    assert _create(server, session, read_timeout=10).status_code == 201  # no rule was added


def test_a_revoked_token_answers_401_and_the_others_still_work(
    syncro: tuple[RunningServer, requests.Session],
) -> None:
    server, session = syncro

    def me(token: str) -> int:
        return session.get(f"{server.url}/api/v1/me", headers={"Authorization": token}, timeout=10).status_code

    assert me(TOKEN) == 200
    assert session.delete(f"{server.url}/_sim/tokens/{TOKEN}", timeout=10).status_code == 204
    assert me(TOKEN) == 401
    assert me(OTHER) == 200
    assert session.delete(f"{server.url}/_sim/tokens/{TOKEN}", timeout=10).status_code == 404
