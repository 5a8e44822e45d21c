"""``POST/DELETE /api/admin/feeds/{syncro_user_id}`` (function key): issue or revoke any Syncro
user's feed URL, linked or not, in the JSON shape of the other admin endpoints."""

from __future__ import annotations

import azure.functions as func

from web.responses import error_response, json_response

# Syncro ids are positive and exceed 2**32; the route's ``long`` constraint bounds them at 2**63.
_MAX_ID = 2**63 - 1


def feed_url_action(method: str, raw_id: str) -> func.HttpResponse:
    """POST: a new URL (older ones stop at once), 201 with ``url`` and ``webcal_url``.
    DELETE: revoke every URL of the user, 200 with how many were active."""
    from ics.tokens import issue_feed_url, revoke_feed_urls, webcal_url
    from settings import SettingsError
    from storage.errors import StorageUnavailable

    try:
        syncro_user_id = int(raw_id)
    except ValueError:
        syncro_user_id = 0
    if not 0 < syncro_user_id <= _MAX_ID:
        return error_response(400, "bad_syncro_user_id", "The Syncro user id must be a positive whole number.")
    try:
        if method.upper() == "DELETE":
            revoked = revoke_feed_urls(syncro_user_id)
            return json_response({"syncro_user_id": str(syncro_user_id), "revoked": revoked})
        url = issue_feed_url(syncro_user_id)
    except SettingsError as error:
        return error_response(503, "misconfigured", str(error))
    except StorageUnavailable:
        return error_response(503, "storage_unavailable", "Table Storage did not answer; try again shortly.")
    # The id as a string: Syncro ids exceed what JSON numbers keep exactly in JavaScript.
    body = {"syncro_user_id": str(syncro_user_id), "url": url, "webcal_url": webcal_url(url)}
    return json_response(body, status=201)
