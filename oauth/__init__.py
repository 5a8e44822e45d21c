"""Linking a technician's Microsoft 365 calendar: MSAL, the encrypted token store, acquiring tokens.

- ``oauth.crypto``: ``TokenCipher`` (Fernet with a key id beside every ciphertext, so keys rotate) and
  ``reencrypt_token_caches``.
- ``oauth.msal_app``: ``build_msal_app`` (the one place an MSAL app is configured) and ``GRAPH_SCOPES``.
- ``oauth.tokens``: ``TokenService`` (save a tech's cache, an access token for a tech, forget) and its errors.

Nothing is imported here eagerly: MSAL and cryptography load only when a trigger needs them (cold starts).
"""
