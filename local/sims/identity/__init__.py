"""A simulator of the Microsoft identity platform (v2 endpoints) for the local stack and tests.

Endpoints, under ``/{tenant}`` (a seeded tenant id or domain, ``common``, ``organizations``, ``consumers``):
- ``GET  /{tenant}/v2.0/.well-known/openid-configuration`` and ``GET /{tenant}/discovery/v2.0/keys``
- ``GET  /{tenant}/oauth2/v2.0/authorize`` -> sign-in page -> ``POST /{tenant}/login`` -> consent page ->
  ``POST /{tenant}/consent`` -> redirect to the app with ``code`` and ``state`` (or ``error=access_denied``).
  In a tenant with ``user_consent: false`` a non-admin without consent gets the "Need admin approval" page
  instead; ``POST /{tenant}/approval`` either restarts the sign-in for an admin or goes back to the app with
  ``error=access_denied`` and AADSTS90094.
- ``GET  /{tenant}/v2.0/adminconsent?client_id&redirect_uri&scope&state`` -> sign-in of a tenant admin ->
  "Accept for your organization" -> redirect with ``admin_consent=True&tenant=<tid>&state=...&scope=...``;
  every user of that tenant may then use the app without a consent page. A non-admin ends with
  ``error=access_denied`` (AADSTS90093), an admin who cancels with ``error=consent_required`` (AADSTS65004).
- ``POST /{tenant}/oauth2/v2.0/token``: authorization_code (PKCE; a code is refused at another tenant's
  authority with AADSTS700005), refresh_token, password (AADSTS65001 where the user may not consent)
- ``GET  /common/userrealm/{username}`` (MSAL asks before a password grant), ``GET /{tenant}/oauth2/v2.0/logout``

Seed (``POST /_sim/seed`` or ``IdentitySim.seed``), additive::

    {"tenants": [{"id": "<guid>", "name": "Contoso", "domain": "contoso.com", "user_consent": true}],
     "users": [{"upn": "Dana.Smith@contoso.com", "mail": "dana@contoso.com", "password": "...", "name": "...",
                "oid": "<optional>", "admin": false, "groups": ["<group oid>"],
                "app_roles": {"<client_id>": ["SyncAdmin"]},
                "tenant_id": "<optional: else the tenant whose domain matches, or the only one>",
                "personal": false}],
     "apps": [{"client_id": "...", "client_secret": "<omit for a public client>", "redirect_uris": [...],
               "name": "...", "sign_in_audience": "AzureADandPersonalMicrosoftAccount", "home_tenant_id": null,
               "app_roles": ["SyncAdmin"], "group_claims": false}]}

Users: ``upn`` is the sign-in name (case kept as seeded, matched in any case; the id_token's
``preferred_username``); ``mail`` the mailbox address, which may differ or be ``null`` (the id_token has an
``email`` claim only when the ``email`` scope was asked for and mail is set). A user seeded with just
``email`` gets it as both upn and mail. ``admin`` marks a tenant admin (may consent for the tenant).
A UPN belongs to one tenant (its domain is verified there), so seeding it into another tenant is refused; ``mail``
is free text any tenant's admin may set, as in Entra ID. ``app_roles`` assigns roles per app: the id_token's
``roles`` claim lists those the app declares in its own ``app_roles``. ``groups`` are the user's group object
ids, in the id_token's ``groups`` claim when the app has ``group_claims`` (token configuration: security groups).
Tenants: ``user_consent`` (default true) says whether members may consent to apps themselves.

Personal accounts belong to tenant ``9188040d-6c67-4c5b-b112-36a304b66dad``; their access tokens are opaque
(not JWTs) unless the setting ``personal_access_tokens_opaque`` is off, and the Graph simulator accepts them
through the shared ``local.sims.tokens.TokenIssuer``. Control routes are listed in ``sim_routes``; settings
in ``settings.IdentitySettings``.
"""

from local.sims.identity.app import IdentitySim
from local.sims.identity.directory import PERSONAL_TENANT_ID
from local.sims.identity.msal_support import msal_session
from local.sims.identity.settings import IdentitySettings

__all__ = ["PERSONAL_TENANT_ID", "IdentitySettings", "IdentitySim", "msal_session"]
