"""The HTML a browser sees: sign-in, consent, error and form_post pages.

Plain forms with stable ids so Playwright (or requests) can drive them: inputs ``email`` and
``password``, buttons ``signin``, ``accept`` (``accept-org`` too for a tenant admin) and ``cancel``; errors
in ``#error``. The "Need admin
approval" page has buttons ``admin`` (sign in with an admin account) and ``back`` (return to the app).
"""

from __future__ import annotations

from html import escape

from starlette.responses import HTMLResponse

_STYLE = (
    "body{font-family:Segoe UI,Arial,sans-serif;background:#f2f2f2}"
    "main{background:#fff;width:440px;margin:60px auto;padding:44px;box-shadow:0 2px 6px rgba(0,0,0,.2)}"
    "input{display:block;width:100%;margin:8px 0 16px;padding:6px}#error{color:#e81123}"
    "button{padding:6px 24px;margin-right:8px}"
)
# Simulator pages are never cached, like AAD's.
_HEADERS = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><main>{body}</main></body></html>"
    )
    return HTMLResponse(html, status_code=status, headers=_HEADERS)


def _error_block(message: str | None) -> str:
    return f"<div id='error' role='alert'>{escape(message)}</div>" if message else ""


def sign_in_page(*, tenant: str, flow_id: str, app_name: str, email: str, error: str | None = None) -> HTMLResponse:
    body = (
        f"<h1>Sign in</h1><p>to continue to <span id='app-name'>{escape(app_name)}</span></p>"
        f"{_error_block(error)}"
        f"<form method='post' action='/{escape(tenant)}/login'>"
        f"<input type='hidden' name='flow' value='{escape(flow_id)}'>"
        f"<label for='email'>Email, phone, or Skype</label>"
        f"<input type='email' id='email' name='email' value='{escape(email)}' autocomplete='username' required>"
        f"<label for='password'>Password</label>"
        f"<input type='password' id='password' name='password' autocomplete='current-password' required>"
        f"<button type='submit' id='signin'>Sign in</button></form>"
    )
    return _page("Sign in to your account", body)


def consent_page(
    *,
    tenant: str,
    flow_id: str,
    app_name: str,
    email: str,
    scopes: list[str],
    for_organization: bool = False,
    offer_organization: bool = False,
) -> HTMLResponse:
    items = "".join(f"<li class='scope'>{escape(scope)}</li>" for scope in scopes)
    # The admin-consent endpoint's page grants for everyone in the tenant and says so.
    org = "<p id='for-organization'>Accept for your organization</p>" if for_organization else ""
    # An admin on the ordinary consent page may also consent on behalf of the organization (a separate
    # button here rather than AAD's checkbox, so a plain form post of "accept" stays a personal consent).
    org_button = (
        "<button type='submit' id='accept-org' name='decision' value='accept_org'>Accept on behalf of your "
        "organization</button>"
        if offer_organization
        else ""
    )
    body = (
        f"<h1>Permissions requested</h1>{org}<p id='user'>{escape(email)}</p>"
        f"<p><span id='app-name'>{escape(app_name)}</span> would like to:</p><ul id='scopes'>{items}</ul>"
        f"<form method='post' action='/{escape(tenant)}/consent'>"
        f"<input type='hidden' name='flow' value='{escape(flow_id)}'>"
        f"<button type='submit' id='accept' name='decision' value='accept'>Accept</button>{org_button}"
        f"<button type='submit' id='cancel' name='decision' value='cancel'>Cancel</button></form>"
    )
    return _page("Permissions requested", body)


def admin_approval_page(*, tenant: str, flow_id: str, app_name: str, email: str, message: str) -> HTMLResponse:
    """Shown instead of the consent page when the tenant lets no user consent (AADSTS90094)."""
    body = (
        f"<h1>Need admin approval</h1><p id='user'>{escape(email)}</p>"
        f"<p id='message'><span id='app-name'>{escape(app_name)}</span> {escape(message)}</p>"
        f"<form method='post' action='/{escape(tenant)}/approval'>"
        f"<input type='hidden' name='flow' value='{escape(flow_id)}'>"
        f"<button type='submit' id='admin' name='decision' value='admin'>Have an admin account? Sign in with "
        "that account</button>"
        f"<button type='submit' id='back' name='decision' value='back'>Return to the application without "
        "granting consent</button></form>"
    )
    return _page("Need admin approval", body)


def error_page(message: str, *, status: int = 400) -> HTMLResponse:
    """The dead end AAD shows for a request it will not send back to the app (bad client or redirect URI)."""
    body = f"<h1>Sorry, but we're having trouble signing you in.</h1>{_error_block(message)}"
    return _page("Sign in to your account", body, status)


def form_post_page(redirect_uri: str, fields: dict[str, str]) -> HTMLResponse:
    """response_mode=form_post: a page that posts the result to the app."""
    inputs = "".join(
        f"<input type='hidden' name='{escape(name)}' value='{escape(value)}'>" for name, value in fields.items()
    )
    body = (
        f"<form method='post' id='response' action='{escape(redirect_uri)}'>{inputs}"
        f"<noscript><button type='submit'>Continue</button></noscript></form>"
        "<script>document.getElementById('response').submit()</script>"
    )
    return _page("Working...", body)
