"""The function-key admin API: `GET /api/admin/links` (every link as JSON, for scripts and
monitoring), `POST /api/admin/reencrypt`, and `POST/DELETE /api/admin/feeds/{syncro_user_id}`."""

from __future__ import annotations

from http_answer import Answer, json_answer
from web.ids import syncro_user_id_from
from web.responses import bad_syncro_user_id, unavailable_as_503


@unavailable_as_503
def list_links() -> Answer:
    from services import storage_account

    links = list(storage_account().links.list_links())
    return json_answer(
        {
            "links": [
                {
                    "syncro_user_id": link.syncro_user_id,
                    "email": link.email,
                    "microsoft_account": link.ms_username,
                    "tenant_id": link.ms_tenant_id,
                    "calendar_id": link.calendar_id,
                    "calendar_name": link.calendar_name,
                    "two_way": link.two_way,
                    "status": link.status.value,
                    "status_detail": link.status_detail,
                    "linked_at": link.linked_at.isoformat(),
                }
                for link in links
            ]
        }
    )


@unavailable_as_503
def reencrypt_token_caches() -> Answer:
    """Move every token cache under the current key (a key rotation's step 3, docs/security.md)."""
    from oauth.crypto import caches_needing_reencryption, reencrypt_token_caches
    from services import storage_account, token_cipher

    store, cipher = storage_account().token_caches, token_cipher()
    moved = reencrypt_token_caches(store, cipher)
    left = caches_needing_reencryption(store, cipher)
    return json_answer({"reencrypted": moved, "still_under_old_keys": left, "done": not left})


@unavailable_as_503
def feed_url_action(method: str, raw_id: str) -> Answer:
    """Issue or revoke any Syncro user's feed URL, linked or not. POST: a new URL (older ones stop
    at once), 201 with ``url`` and ``webcal_url``. DELETE: revoke every URL of the user, 200 with
    how many were active."""
    from ics.feed_tokens import issue_feed_url, revoke_feed_urls, webcal_url
    from services import storage_account

    syncro_user_id = syncro_user_id_from(raw_id)
    if syncro_user_id is None:
        return bad_syncro_user_id()
    if method.upper() == "DELETE":
        revoked = revoke_feed_urls(storage_account(), syncro_user_id)
        return json_answer({"syncro_user_id": str(syncro_user_id), "revoked": revoked})
    url = issue_feed_url(storage_account(), syncro_user_id)
    # The id as a string: Syncro ids exceed what JSON numbers keep exactly in JavaScript.
    body = {"syncro_user_id": str(syncro_user_id), "url": url, "webcal_url": webcal_url(url)}
    return json_answer(body, status=201)
