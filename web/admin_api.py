"""`GET /api/admin/links` (function key): every link as JSON, for scripts and monitoring."""

from __future__ import annotations

import azure.functions as func

from web.responses import json_response, unavailable_as_503


@unavailable_as_503
def list_links() -> func.HttpResponse:
    from services import storage_account

    links = list(storage_account().links.list_links())
    return json_response(
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
def reencrypt_token_caches() -> func.HttpResponse:
    """Move every token cache under the current key (a key rotation's step 3, docs/security.md)."""
    from oauth.crypto import caches_needing_reencryption, reencrypt_token_caches
    from services import storage_account, token_cipher

    store, cipher = storage_account().token_caches, token_cipher()
    moved = reencrypt_token_caches(store, cipher)
    left = caches_needing_reencryption(store, cipher)
    return json_response({"reencrypted": moved, "still_under_old_keys": left, "done": not left})
