"""ops.logs.log_event: one JSON line per event, ids first, never a secret or a body."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from enum import StrEnum

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ops.logs import REDACTED, log_event

JWT = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJhdWQiOiJodHRwczovL2dyYXBoIn0.c2lnbmF0dXJl"


class Outcome(StrEnum):
    DONE = "done"


@pytest.fixture
def logger() -> logging.Logger:
    return logging.getLogger("tests.ops.logs")


def logged(caplog: pytest.LogCaptureFixture) -> list[dict]:
    return [json.loads(record.getMessage()) for record in caplog.records]


def test_one_line_with_the_ids_first_and_fields_sorted(logger, caplog) -> None:
    with caplog.at_level(logging.INFO, logger=logger.name):
        line = log_event(
            logger,
            "sync.action",
            tech=42,
            job_id="job-7",
            correlation_id="corr-1",
            outcome=Outcome.DONE,
            action="create_in_outlook",
            status_code=201,
            at=datetime(2026, 12, 1, 9, 30, tzinfo=UTC),
        )
    assert len(caplog.records) == 1 and caplog.records[0].levelno == logging.INFO
    assert caplog.records[0].getMessage() == line and "\n" not in line
    assert list(json.loads(line).items()) == [
        ("event", "sync.action"),
        ("tech", 42),
        ("job_id", "job-7"),
        ("correlation_id", "corr-1"),
        ("action", "create_in_outlook"),
        ("at", "2026-12-01T09:30:00+00:00"),
        ("outcome", "done"),
        ("status_code", 201),
    ]


def test_unknown_ids_are_written_as_null_and_the_level_is_the_callers(logger, caplog) -> None:
    with caplog.at_level(logging.DEBUG, logger=logger.name):
        log_event(logger, "webhook.syncro", tech=None, job_id=None, correlation_id=None, level=logging.WARNING)
    assert caplog.records[0].levelno == logging.WARNING
    assert logged(caplog) == [{"event": "webhook.syncro", "tech": None, "job_id": None, "correlation_id": None}]


@pytest.mark.parametrize(
    "name",
    [
        "token",
        "access_token",
        "refreshToken",
        "client_secret",
        "webhook_secret",
        "body",
        "request_body",
        "password",
        "code",
        "auth_code",
        "api_key",
        "Authorization",
        "cookie",
        "credential",
        "client_state",
        "signature",
        "client-assertion",
    ],
)
def test_fields_named_like_secrets_are_redacted(logger, caplog, name: str) -> None:
    with caplog.at_level(logging.INFO, logger=logger.name):
        line = log_event(logger, "webhook.graph", tech=1, job_id=None, correlation_id=None, **{name: "s3cr3t-value"})
    assert "s3cr3t-value" not in line and "s3cr3t-value" not in caplog.text
    assert logged(caplog)[0][name] == REDACTED


def test_protocol_codes_are_not_secrets(logger, caplog) -> None:
    with caplog.at_level(logging.INFO, logger=logger.name):
        log_event(
            logger,
            "sync.action",
            tech=1,
            job_id="j",
            correlation_id="c",
            status_code=429,
            error_code="ErrorItemNotFound",
        )
    entry = logged(caplog)[0]
    assert (entry["status_code"], entry["error_code"]) == (429, "ErrorItemNotFound")


@pytest.mark.parametrize("value", [f"Bearer {JWT}", JWT, f"token was {JWT} then", "bearer abc.def"])
def test_values_that_look_like_credentials_are_redacted_whatever_the_name(logger, caplog, value: str) -> None:
    with caplog.at_level(logging.INFO, logger=logger.name):
        line = log_event(logger, "sync.action", tech=1, job_id=value, correlation_id=None, detail=value)
    entry = json.loads(line)
    assert entry["detail"] == entry["job_id"] == REDACTED
    assert JWT not in caplog.text and "abc.def" not in caplog.text


@pytest.mark.parametrize(
    "value",
    [{"subject": "Dentist", "token": "x"}, ["a", "b"], b"raw bytes", object()],
    ids=["dict", "list", "bytes", "object"],
)
def test_containers_and_objects_are_never_written(logger, caplog, value: object) -> None:
    with caplog.at_level(logging.INFO, logger=logger.name):
        line = log_event(logger, "webhook.syncro", tech=None, job_id=None, correlation_id="c", payload=value)
    assert json.loads(line)["payload"] == f"[not logged: {type(value).__name__}]"
    assert "Dentist" not in line and "raw bytes" not in line


def test_long_strings_are_cut(logger, caplog) -> None:
    with caplog.at_level(logging.INFO, logger=logger.name):
        line = log_event(logger, "sync.action", tech=1, job_id=None, correlation_id=None, detail="x" * 5000)
    assert len(json.loads(line)["detail"]) == 201


@pytest.mark.parametrize("event", ["", "Sync.Action", "sync action", "sync..action", ".sync", "sync.", 42])
def test_a_malformed_event_name_is_a_bug_and_raises(logger, event) -> None:
    with pytest.raises(ValueError, match="event names"):
        log_event(logger, event, tech=None, job_id=None, correlation_id=None)


def test_not_a_number_is_still_valid_json(logger, caplog) -> None:
    with caplog.at_level(logging.INFO, logger=logger.name):
        line = log_event(logger, "sync.action", tech=1, job_id=None, correlation_id=None, ratio=float("nan"))
    assert json.loads(line)["ratio"] == "nan"


@given(
    name=st.from_regex(r"[a-z][a-z_]{0,12}", fullmatch=True),
    secret=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=12, max_size=40),
)
def test_a_value_under_any_sensitive_name_never_reaches_the_line(name: str, secret: str) -> None:
    logger = logging.getLogger("tests.ops.logs.property")
    for sensitive in (f"{name}_token", f"{name}_secret", f"{name}_body", f"{name}password", f"{name}_key"):
        line = log_event(logger, "sync.action", tech=1, job_id=None, correlation_id=None, **{sensitive: secret})
        assert secret not in line
