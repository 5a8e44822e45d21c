"""AADSTS errors in the exact shape the token endpoint answers them.

Real body (from captured responses)::

    {"error": "invalid_grant",
     "error_description": "AADSTS50126: Error validating credentials due to invalid username or password.\\r\\n
                           Trace ID: ...\\r\\nCorrelation ID: ...\\r\\nTimestamp: 2021-06-25 13:16:19Z",
     "error_codes": [50126], "timestamp": "2021-06-25 13:16:19Z", "trace_id": "...", "correlation_id": "...",
     "error_uri": "https://login.microsoftonline.com/error?code=50126"}

plus ``suberror`` (``consent_required``, ``basic_action``, ``bad_token``) and ``claims`` where AAD sends them.
The correlation id echoes the ``client-request-id`` header MSAL sends, as AAD does.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from starlette.responses import JSONResponse

NO_STORE = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"


@dataclass(eq=False)  # exceptions stay hashable
class AadError(Exception):
    """One AADSTS error; raise it anywhere in a handler and the endpoint answers it."""

    code: int
    message: str
    error: str = "invalid_grant"
    status: int = 400
    suberror: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(f"AADSTS{self.code}: {self.message}")

    def body(self, *, now: datetime, correlation_id: str | None) -> dict[str, Any]:
        stamp = now.strftime("%Y-%m-%d %H:%M:%SZ")
        trace_id = str(uuid.uuid4())
        correlation = correlation_id or str(uuid.uuid4())
        body: dict[str, Any] = {
            "error": self.error,
            "error_description": (
                f"AADSTS{self.code}: {self.message}\r\nTrace ID: {trace_id}\r\n"
                f"Correlation ID: {correlation}\r\nTimestamp: {stamp}"
            ),
            "error_codes": [self.code],
            "timestamp": stamp,
            "trace_id": trace_id,
            "correlation_id": correlation,
            # The real service's help link; clients show it, never follow it automatically.
            "error_uri": f"https://login.microsoftonline.com/error?code={self.code}",
        }
        if self.suberror:
            body["suberror"] = self.suberror
        body.update(self.extra)
        return body

    def response(self, *, now: datetime, correlation_id: str | None) -> JSONResponse:
        return JSONResponse(
            self.body(now=now, correlation_id=correlation_id),
            status_code=self.status,
            headers=NO_STORE,
        )


def valid_correlation_id(value: str | None) -> str | None:
    try:
        return str(uuid.UUID(value)) if value else None
    except ValueError:
        return None


def aad_stamp(moment: datetime) -> str:
    """The 7-digit fractional ISO time AAD puts in messages (``2021-02-20T02:58:17.0350262Z``)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


# --- the catalogue: one function per condition ---------------------------------------------------


def missing_parameter(name: str) -> AadError:
    return AadError(900144, f"The request body must contain the following parameter: '{name}'.", "invalid_request")


def duplicated_parameter(name: str) -> AadError:
    return AadError(
        9000411, f"The request is not properly formatted. The parameter '{name}' is duplicated.", "invalid_request"
    )


def post_only() -> AadError:
    return AadError(900561, "The endpoint only accepts POST requests. Received a GET request.", "invalid_request")


def tenant_not_found(segment: str) -> AadError:
    return AadError(
        90002,
        f"Tenant '{segment}' not found. Check to make sure you have the correct tenant ID and are signing into "
        "the correct cloud. Check with your subscription administrator, this may happen if there are no active "
        "subscriptions for the tenant.",
        "invalid_tenant",
    )


def unknown_client(client_id: str, tenant_name: str) -> AadError:
    return AadError(
        700016,
        f"Application with identifier '{client_id}' was not found in the directory '{tenant_name}'. This can "
        "happen if the application has not been installed by the administrator of the tenant or consented to by "
        "any user in the tenant. You may have sent your authentication request to the wrong tenant.",
        "unauthorized_client",
    )


def unsupported_grant_type(grant_type: str) -> AadError:
    return AadError(70003, f"The app requested an unsupported grant type '{grant_type}'.", "unsupported_grant_type")


def secret_missing() -> AadError:
    return AadError(
        7000218,
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        "invalid_client",
        status=401,
    )


def secret_invalid(client_id: str) -> AadError:
    return AadError(
        7000215,
        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, "
        f"not the client secret ID, for a secret added to app '{client_id}'.",
        "invalid_client",
        status=401,
    )


def public_client_sent_secret() -> AadError:
    return AadError(
        700025,
        "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
        "invalid_client",
        status=401,
    )


def invalid_scope(scope: str) -> AadError:
    return AadError(
        70011,
        "The provided request must include a 'scope' input parameter. The provided value for "
        f"the input parameter 'scope' is not valid. The scope {scope} is not valid.",
        "invalid_scope",
    )


def unknown_resource(resource: str, tenant_name: str) -> AadError:
    return AadError(
        500011,
        f"The resource principal named {resource} was not found in the tenant named "
        f"{tenant_name}. This can happen if the application has not been installed by the administrator "
        "of the tenant or consented to by any user in the tenant. You might have sent your "
        "authentication request to the wrong tenant.",
        "invalid_resource",
    )


def malformed_grant() -> AadError:
    return AadError(9002313, "Invalid request. Request is malformed or invalid.", "invalid_grant")


def grant_for_other_client() -> AadError:
    return AadError(70000, "Provided grant is invalid or malformed.", "invalid_grant")


def code_redeemed() -> AadError:
    return AadError(
        54005,
        "OAuth2 Authorization code was already redeemed, please retry with a new valid code or "
        "use an existing refresh token.",
    )


def grant_expired() -> AadError:
    return AadError(
        70008,
        "The provided authorization code or refresh token has expired due to inactivity. Send a "
        "new interactive authorization request for this user and resource.",
    )


def redirect_uri_mismatch(given: str, expected: str) -> AadError:
    return AadError(
        500112,
        f"The reply address '{given}' does not match the reply address '{expected}' provided "
        "when requesting Authorization code.",
    )


def code_verifier_mismatch() -> AadError:
    return AadError(
        501481, "The Code_Verifier does not match the code_challenge supplied in the authorization request."
    )


def refresh_token_idle(issued: datetime, idle_seconds: int) -> AadError:
    return AadError(
        700082,
        f"The refresh token has expired due to inactivity. The token was issued on "
        f"{aad_stamp(issued)} and was inactive for {_timespan(idle_seconds)}.",
        suberror="bad_token",
    )


def grant_revoked(issued: datetime, valid_from: datetime) -> AadError:
    return AadError(
        50173,
        "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have "
        f"changed or reset their password. The grant was issued on '{aad_stamp(issued)}' and the TokensValidFrom "
        f"date (before which tokens are not valid) for this user is '{aad_stamp(valid_from)}'.",
    )


def consent_required(client_id: str, app_name: str) -> AadError:
    return AadError(
        65001,
        f"The user or administrator has not consented to use the application with ID "
        f"'{client_id}' named '{app_name}'. Send an interactive authorization request for this user and "
        "resource.",
        suberror="consent_required",
    )


def admin_approval_required() -> AadError:
    # What "Return to the application without granting consent" on the "Need admin approval" page sends.
    return AadError(90094, "The grant requires admin permission.", "access_denied")


def not_an_admin() -> AadError:
    # A non-admin at /adminconsent. Unconfirmed: the code and wording come from third-party reports.
    return AadError(90093, "Calling principal cannot consent due to lack of permissions.", "access_denied")


def admin_consent_declined() -> AadError:
    # The admin cancelled at /adminconsent; Microsoft's admin-consent page documents this exact answer.
    return AadError(65004, "The resource owner or authorization server denied the request.", "consent_required")


def code_for_other_tenant() -> AadError:
    return AadError(700005, "Provided Authorization Code is intended to use against other tenant, thus rejected.")


def mfa_required() -> AadError:
    # Captured v2 responses carry error invalid_grant, suberror basic_action and a claims challenge.
    claims = json.dumps(
        {"access_token": {"capolids": {"essential": True, "values": [str(uuid.uuid4())]}}}, separators=(",", ":")
    )
    return AadError(
        50076,
        "Due to a configuration change made by your administrator, or because you moved to a new "
        f"location, you must use multi-factor authentication to access '{GRAPH_APP_ID}'.",
        suberror="basic_action",
        extra={"claims": claims},
    )


def scopes_unauthorized() -> AadError:
    return AadError(
        70000,
        "The request was denied because one or more scopes requested are unauthorized or "
        "expired. The user must first sign in and grant the client application access to the requested "
        "scope.",
    )


def bad_credentials() -> AadError:
    return AadError(50126, "Error validating credentials due to invalid username or password.")


def user_not_in_directory(tenant: str) -> AadError:
    return AadError(
        50034,
        f"The user account {{EUII Hidden}} does not exist in the {tenant} directory. To sign "
        "into this application, the account must be added to the directory.",
    )


def user_disabled() -> AadError:
    return AadError(50057, "The user account is disabled.")


def grant_not_on_common() -> AadError:
    # ROPC (and other non-interactive grants) at /common or /consumers; personal accounts never support ROPC.
    return AadError(
        9001023,
        "The grant type is not supported over the /common or /consumers endpoints. Please use "
        "the /organizations or tenant-specific endpoint.",
        "invalid_request",
    )


def server_error(status: int) -> AadError:
    return AadError(
        90033, "A transient error has occurred. Please try again.", "temporarily_unavailable", status=status
    )


def _timespan(seconds: int) -> str:
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{days}.{hours:02d}:{minutes:02d}:{secs:02d}"
