"""Linking a technician's calendar: Microsoft sign-in, the settings page, the admin overview.

Pages are anonymous at the Functions level: who may see what is decided by the signed session
cookie that the Microsoft sign-in sets. The JSON list of links is for scripts, with a function key.
"""

import azure.functions as func

from blueprints.audit import audited

bp = func.Blueprint()
PAGE = func.AuthLevel.ANONYMOUS


def _page(handler_name: str, req: func.HttpRequest) -> func.HttpResponse:
    from web import handlers
    from web.http import from_functions, to_functions

    return to_functions(getattr(handlers, handler_name)(from_functions(req)))


def _form(handler_name: str, req: func.HttpRequest) -> func.HttpResponse:
    """A route forms POST to; a GET (a bookmark, a reload, a typed address) gets a page saying so."""
    if req.method.upper() == "GET":
        from web import handlers
        from web.http import from_functions, to_functions

        return to_functions(handlers.form_only(from_functions(req), accept=req.headers.get("accept")))
    return _page(handler_name, req)


@bp.route(route="oauth/start", methods=["GET"], auth_level=PAGE)
def oauth_start(req: func.HttpRequest) -> func.HttpResponse:
    return _page("oauth_start", req)


@bp.route(route="oauth/callback", methods=["GET"], auth_level=PAGE)
def oauth_callback(req: func.HttpRequest) -> func.HttpResponse:
    return _page("oauth_callback", req)


@bp.route(route="settings", methods=["GET", "POST"], auth_level=PAGE)
def settings_page(req: func.HttpRequest) -> func.HttpResponse:
    return _page("settings_page", req)


@bp.route(route="settings/unlink", methods=["GET", "POST"], auth_level=PAGE)
def settings_unlink(req: func.HttpRequest) -> func.HttpResponse:
    return _page("settings_unlink", req)


@bp.route(route="settings/feed", methods=["GET", "POST"], auth_level=PAGE)
def settings_feed(req: func.HttpRequest) -> func.HttpResponse:
    return _form("settings_new_feed_url", req)


@bp.route(route="settings/syncro-token", methods=["GET", "POST"], auth_level=PAGE)
def settings_syncro_token(req: func.HttpRequest) -> func.HttpResponse:
    return _page("settings_syncro_token", req)


@bp.route(route="settings/sync", methods=["GET", "POST"], auth_level=PAGE)
def settings_sync_now(req: func.HttpRequest) -> func.HttpResponse:
    return _form("settings_sync_now", req)


@bp.route(route="settings/status", methods=["GET"], auth_level=PAGE)
def settings_status(req: func.HttpRequest) -> func.HttpResponse:
    return _page("settings_status", req)


@bp.route(route="settings/signout", methods=["GET", "POST"], auth_level=PAGE)
def settings_signout(req: func.HttpRequest) -> func.HttpResponse:
    return _form("sign_out", req)


@bp.route(route="admin", methods=["GET"], auth_level=PAGE)
def admin_page(req: func.HttpRequest) -> func.HttpResponse:
    return _page("admin_page", req)


@bp.route(route="admin/overrides", methods=["GET", "POST"], auth_level=PAGE)
def admin_overrides(req: func.HttpRequest) -> func.HttpResponse:
    return _form("admin_overrides", req)


@bp.route(route="admin/remove", methods=["GET", "POST"], auth_level=PAGE)
def admin_remove(req: func.HttpRequest) -> func.HttpResponse:
    return _form("admin_remove", req)


@bp.route(route="admin/tech", methods=["GET", "POST"], auth_level=PAGE)
def admin_tech(req: func.HttpRequest) -> func.HttpResponse:
    return _form("admin_tech", req)


@bp.route(route="admin/bin", methods=["GET"], auth_level=PAGE)
def admin_bin(req: func.HttpRequest) -> func.HttpResponse:
    return _page("admin_bin", req)


@bp.route(route="admin/links", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def admin_links(req: func.HttpRequest) -> func.HttpResponse:
    from web.admin_api import list_links

    return list_links()


@bp.route(route="admin/reencrypt", methods=["POST"], auth_level=func.AuthLevel.ADMIN)
@audited("reencrypt")
def admin_reencrypt(req: func.HttpRequest) -> func.HttpResponse:
    from web.admin_api import reencrypt_token_caches

    return reencrypt_token_caches()
