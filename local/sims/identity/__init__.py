"""A simulator of the Microsoft identity platform (v2 endpoints) for the local stack and tests.

Endpoints, under ``/{tenant}`` (a seeded tenant id or domain, ``common``, ``organizations``, ``consumers``):
- ``GET  /{tenant}/v2.0/.well-known/openid-configuration`` and ``GET /{tenant}/discovery/v2.0/keys``
- ``GET  /{tenant}/oauth2/v2.0/authorize`` -> sign-in page -> ``POST /{tenant}/login`` -> consent page ->
  ``POST /{tenant}/consent`` -> redirect to the app with ``code`` and ``state`` (or ``error=access_denied``)
- ``POST /{tenant}/oauth2/v2.0/token``: authorization_code (PKCE), refresh_token, password
- ``GET  /common/userrealm/{username}`` (MSAL asks before a password grant), ``GET /{tenant}/oauth2/v2.0/logout``

Seed (``POST /_sim/seed`` or ``IdentitySim.seed``), additive::

    {"tenants": [{"id": "<guid>", "name": "Contoso", "domain": "contoso.com"}],
     "users": [{"email": "...", "password": "...", "name": "...", "oid": "<optional>",
                "tenant_id": "<optional: else the tenant whose domain matches, or the only one>",
                "personal": false}],
     "apps": [{"client_id": "...", "client_secret": "<omit for a public client>", "redirect_uris": [...],
               "name": "...", "sign_in_audience": "AzureADandPersonalMicrosoftAccount", "home_tenant_id": null}]}

Personal accounts belong to tenant ``9188040d-6c67-4c5b-b112-36a304b66dad``. Control routes are listed in
``sim_routes``; settings in ``settings.IdentitySettings``.
"""

from local.sims.identity.app import IdentitySim
from local.sims.identity.directory import PERSONAL_TENANT_ID
from local.sims.identity.msal_support import msal_session
from local.sims.identity.settings import IdentitySettings

__all__ = ["PERSONAL_TENANT_ID", "IdentitySettings", "IdentitySim", "msal_session"]
