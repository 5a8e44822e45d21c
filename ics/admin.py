"""``POST/DELETE /api/admin/feeds/{syncro_user_id}`` (function key): issue or revoke any Syncro
user's feed URL, linked or not, in the JSON shape of the other admin endpoints."""

from __future__ import annotations

import azure.functions as func

from web.ids import syncro_user_id_from
from web.responses import bad_syncro_user_id, json_response, unavailable_as_503


@unavailable_as_503
def feed_url_action(method: str, raw_id: str) -> func.HttpResponse:
    """POST: a new URL (older ones stop at once), 201 with ``url`` and ``webcal_url``.
    DELETE: revoke every URL of the user, 200 with how many were active."""
    from ics.tokens import issue_feed_url, revoke_feed_urls, webcal_url

    syncro_user_id = syncro_user_id_from(raw_id)
    if syncro_user_id is None:
        return bad_syncro_user_id()
    if method.upper() == "DELETE":
        revoked = revoke_feed_urls(syncro_user_id)
        return json_response({"syncro_user_id": str(syncro_user_id), "revoked": revoked})
    url = issue_feed_url(syncro_user_id)
    # The id as a string: Syncro ids exceed what JSON numbers keep exactly in JavaScript.
    body = {"syncro_user_id": str(syncro_user_id), "url": url, "webcal_url": webcal_url(url)}
    return json_response(body, status=201)
