"""The sync engine's admin routes (function key): sync a tech now, the recycle bin."""

import azure.functions as func

from blueprints.answers import http_response
from blueprints.audit import audited

bp = func.Blueprint()


@bp.route(route="admin/sync/{syncro_user_id:long}", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@audited("sync_now")
def admin_sync_now(req: func.HttpRequest) -> func.HttpResponse:
    from web.sync_api import sync_now

    return http_response(sync_now(req.route_params.get("syncro_user_id", ""), poll=req.params.get("poll", "1") != "0"))


@bp.route(route="admin/recycle-bin/{syncro_user_id:long}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def admin_recycle_bin(req: func.HttpRequest) -> func.HttpResponse:
    from web.sync_api import list_recycle_bin

    return http_response(list_recycle_bin(req.route_params.get("syncro_user_id", "")))


@bp.route(
    route="admin/recycle-bin/{syncro_user_id:long}/{entry}/restore",
    methods=["POST"],
    auth_level=func.AuthLevel.FUNCTION,
)
@audited("restore")
def admin_recycle_bin_restore(req: func.HttpRequest) -> func.HttpResponse:
    from web.sync_api import restore

    return http_response(restore(req.route_params.get("syncro_user_id", ""), req.route_params.get("entry", "")))


@bp.route(route="admin/syncro-tokens/{syncro_user_id:long}", methods=["PUT"], auth_level=func.AuthLevel.FUNCTION)
@audited("set_syncro_token")
def admin_set_syncro_token(req: func.HttpRequest) -> func.HttpResponse:
    from web.sync_api import set_syncro_token

    return http_response(set_syncro_token(req.route_params.get("syncro_user_id", ""), req.get_body()))


@bp.route(route="admin/syncro-tokens/{syncro_user_id:long}", methods=["DELETE"], auth_level=func.AuthLevel.FUNCTION)
@audited("forget_syncro_token")
def admin_forget_syncro_token(req: func.HttpRequest) -> func.HttpResponse:
    from web.sync_api import forget_syncro_token

    return http_response(forget_syncro_token(req.route_params.get("syncro_user_id", "")))
