"""What the function-key admin API (`web.admin_api`, `web.sync_api`) answers in common: a bad id,
and the 503 for settings or storage trouble. Its answers are `http_answer.Answer` JSON bodies."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec

from http_answer import Answer, error_answer

P = ParamSpec("P")


def bad_syncro_user_id() -> Answer:
    return error_answer(400, "bad_syncro_user_id", "The Syncro user id must be a positive whole number.")


def unavailable_as_503(endpoint: Callable[P, Answer]) -> Callable[P, Answer]:
    """For admin JSON endpoints: invalid settings or unreachable Table Storage answer 503 with a
    sentence saying so, never a traceback."""

    @functools.wraps(endpoint)
    def run(*args: P.args, **kwargs: P.kwargs) -> Answer:
        from settings import SettingsError
        from storage.errors import StorageUnavailable

        try:
            return endpoint(*args, **kwargs)
        except SettingsError as error:
            return error_answer(503, "misconfigured", str(error))
        except StorageUnavailable:
            return error_answer(503, "storage_unavailable", "Table Storage did not answer; try again shortly.")

    return run
