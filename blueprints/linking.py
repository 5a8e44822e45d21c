"""Linking a technician's calendar: Microsoft sign-in, the settings page, the admin overview.

Pages are anonymous at the Functions level: who may see what is decided by the signed session
cookie that the Microsoft sign-in sets. The JSON list of links is for scripts, with a function key.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING

import azure.functions as func

from blueprints.answers import http_response
from blueprints.audit import audited

if TYPE_CHECKING:
    from http_answer import Answer
    from web.http import WebRequest

bp = func.Blueprint()
Handler = Callable[["WebRequest"], "Answer"]  # a page handler (`web.*_handlers`)
PAGE = func.AuthLevel.ANONYMOUS


def web_request(req: func.HttpRequest) -> "WebRequest":
    """The page handlers' view of a request: a POST's form read (or why it could not be)."""
    from web.http import BadForm, WebRequest, read_form

    form: dict[str, str] = {}
    problem = ""
    if req.method.upper() == "POST":
        try:
            form = read_form(req.get_body(), req.headers.get("content-type"))
        except BadForm as error:
            problem = str(error)
    return WebRequest(
        method=req.method.upper(),
        url=req.url,
        query=dict(req.params),
        form=form,
        cookie=req.headers.get("cookie"),
        form_error=problem,
    )


def _send_page(answer: "Answer") -> func.HttpResponse:
    from web.pages import PAGE_HEADERS  # CSP (with the hashes of our one style and script), no-store, ...

    return http_response(answer, beneath=PAGE_HEADERS)


def _page(handler: "Handler", req: func.HttpRequest) -> func.HttpResponse:
    return _send_page(handler(web_request(req)))


def _form(handler: "Handler", req: func.HttpRequest) -> func.HttpResponse:
    """A route forms POST to; a GET (a bookmark, a reload, a typed address) gets a page saying so."""
    if req.method.upper() == "GET":
        from web.page_guards import form_only

        return _send_page(form_only(accept=req.headers.get("accept")))
    return _page(handler, req)


# Each route imports its handler when called: a cold start loads only the modules its route needs.


@bp.route(route="oauth/start", methods=["GET"], auth_level=PAGE)
def oauth_start(req: func.HttpRequest) -> func.HttpResponse:
    from web import sign_in_handlers

    return _page(sign_in_handlers.oauth_start, req)


@bp.route(route="oauth/callback", methods=["GET"], auth_level=PAGE)
def oauth_callback(req: func.HttpRequest) -> func.HttpResponse:
    from web import sign_in_handlers

    return _page(sign_in_handlers.oauth_callback, req)


@bp.route(route="settings", methods=["GET", "POST"], auth_level=PAGE)
def settings_page(req: func.HttpRequest) -> func.HttpResponse:
    from web import settings_handlers

    return _page(settings_handlers.settings_page, req)


@bp.route(route="settings/unlink", methods=["GET", "POST"], auth_level=PAGE)
def settings_unlink(req: func.HttpRequest) -> func.HttpResponse:
    from web import settings_handlers

    return _page(settings_handlers.settings_unlink, req)


@bp.route(route="settings/feed", methods=["GET", "POST"], auth_level=PAGE)
def settings_feed(req: func.HttpRequest) -> func.HttpResponse:
    from web import settings_handlers

    return _form(settings_handlers.settings_new_feed_url, req)


@bp.route(route="settings/syncro-token", methods=["GET", "POST"], auth_level=PAGE)
def settings_syncro_token(req: func.HttpRequest) -> func.HttpResponse:
    from web import settings_handlers

    return _page(settings_handlers.settings_syncro_token, req)


@bp.route(route="settings/sync", methods=["GET", "POST"], auth_level=PAGE)
def settings_sync_now(req: func.HttpRequest) -> func.HttpResponse:
    from web import settings_handlers

    return _form(settings_handlers.settings_sync_now, req)


@bp.route(route="settings/status", methods=["GET"], auth_level=PAGE)
def settings_status(req: func.HttpRequest) -> func.HttpResponse:
    from web import settings_handlers

    return _page(settings_handlers.settings_status, req)


@bp.route(route="settings/signout", methods=["GET", "POST"], auth_level=PAGE)
def settings_signout(req: func.HttpRequest) -> func.HttpResponse:
    from web import sign_in_handlers

    return _form(sign_in_handlers.sign_out, req)


@bp.route(route="admin", methods=["GET"], auth_level=PAGE)
def admin_page(req: func.HttpRequest) -> func.HttpResponse:
    from web import admin_handlers

    return _page(admin_handlers.admin_page, req)


@bp.route(route="admin/overrides", methods=["GET", "POST"], auth_level=PAGE)
def admin_overrides(req: func.HttpRequest) -> func.HttpResponse:
    from web import admin_handlers

    return _form(admin_handlers.admin_overrides, req)


@bp.route(route="admin/remove", methods=["GET", "POST"], auth_level=PAGE)
def admin_remove(req: func.HttpRequest) -> func.HttpResponse:
    from web import admin_handlers

    return _form(admin_handlers.admin_remove, req)


@bp.route(route="admin/tech", methods=["GET", "POST"], auth_level=PAGE)
def admin_tech(req: func.HttpRequest) -> func.HttpResponse:
    from web import admin_handlers

    return _form(admin_handlers.admin_tech, req)


@bp.route(route="admin/bin", methods=["GET"], auth_level=PAGE)
def admin_bin(req: func.HttpRequest) -> func.HttpResponse:
    from web import admin_handlers

    return _page(admin_handlers.admin_bin, req)


@bp.route(route="admin/links", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def admin_links(req: func.HttpRequest) -> func.HttpResponse:
    from web.admin_api import list_links

    return http_response(list_links())


@bp.route(route="admin/reencrypt", methods=["POST"], auth_level=func.AuthLevel.ADMIN)
@audited("reencrypt")
def admin_reencrypt(req: func.HttpRequest) -> func.HttpResponse:
    from web.admin_api import reencrypt_token_caches

    return http_response(reencrypt_token_caches())
