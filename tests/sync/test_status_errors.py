"""The status -> error class tables of `sync.errors`, as the two clients read them: the same
classes the if/elif ladders they replace gave, status by status."""

from __future__ import annotations

import json

import pytest
import requests

from sync import errors
from sync.graph_errors import error_of
from sync.syncro import syncro_error

GRAPH_LADDER = {
    400: errors.GraphInvalidRequest,
    401: errors.GraphUnauthorized,
    403: errors.GraphForbidden,
    404: errors.GraphNotFound,
    405: errors.GraphUnexpectedResponse,
    409: errors.GraphUnexpectedResponse,
    410: errors.GraphNotFound,
    412: errors.GraphPreconditionFailed,
    422: errors.GraphInvalidRequest,
    424: errors.GraphUnexpectedResponse,
    429: errors.GraphThrottled,
    500: errors.GraphUnavailable,
    502: errors.GraphUnavailable,
    503: errors.GraphUnavailable,
    504: errors.GraphUnavailable,
}

SYNCRO_LADDER = {
    400: errors.SyncroInvalidRequest,
    401: errors.SyncroUnauthorized,
    403: errors.SyncroForbidden,
    404: errors.SyncroNotFound,
    409: errors.SyncroUnexpectedResponse,
    410: errors.SyncroUnexpectedResponse,
    412: errors.SyncroUnexpectedResponse,
    422: errors.SyncroInvalidRequest,
    429: errors.SyncroThrottled,
    500: errors.SyncroUnavailable,
    503: errors.SyncroUnavailable,
}


@pytest.mark.parametrize(("status", "kind"), GRAPH_LADDER.items())
def test_a_graph_status_becomes_the_class_of_its_row(status: int, kind: type) -> None:
    error = error_of(status, "someCode", "what Graph said", None)
    assert type(error) is kind and error.status == status and error.code == "someCode"


def test_a_graph_503_that_says_when_to_come_back_is_a_throttle() -> None:
    error = error_of(503, None, "busy", 2.0)
    assert type(error) is errors.GraphThrottled and error.retry_after == 2.0
    assert type(error_of(500, None, "down", 2.0)) is errors.GraphUnavailable


def _syncro_response(status: int, body: object) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode()
    response.url = "https://acme.syncromsp.com/api/v1/appointments/7"
    response.request = requests.Request("GET", response.url).prepare()
    return response


@pytest.mark.parametrize(("status", "kind"), SYNCRO_LADDER.items())
def test_a_syncro_status_becomes_the_class_of_its_row(status: int, kind: type) -> None:
    error = syncro_error(_syncro_response(status, {"error": "no"}))
    assert type(error) is kind and error.status == status and error.code is None
    assert error.message == "GET /api/v1/appointments/7: no"


def test_a_syncro_401_that_names_a_permission_is_forbidden() -> None:
    said = "Not authorized. Please ask account admin to update your group permissions."
    assert type(syncro_error(_syncro_response(401, {"error": said}))) is errors.SyncroForbidden


def test_every_class_of_a_table_belongs_to_its_service() -> None:
    for table, root in (
        (errors.GRAPH_STATUS_ERRORS, errors.GraphError),
        (errors.SYNCRO_STATUS_ERRORS, errors.SyncroError),
    ):
        assert all(issubclass(kind, root) for kind in [*table.by_status.values(), table.server, table.other])
