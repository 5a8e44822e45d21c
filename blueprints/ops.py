"""Operations endpoints: health (anonymous, for probes and the admin)."""

import azure.functions as func

bp = func.Blueprint()


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    from ops.health import check_health
    from services import app_version, storage_account
    from web.responses import json_response

    report = check_health(app_version(), storage_account)
    return json_response(report.body, status=200 if report.healthy else 503)
