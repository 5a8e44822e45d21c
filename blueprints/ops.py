"""Operations endpoints: health. ``GET /api/health`` is anonymous (probes, availability tests) and
says only whether the app is up (a signed-in admin's browser gets the details);
``GET /api/health/details`` (function key) adds the version,
storage, counts and Syncro ownership (docs/troubleshooting.md)."""

import azure.functions as func

bp = func.Blueprint()


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    # The one place that decides who sees the details here: a signed-in admin (their session
    # cookie travels on /api); anyone else gets the status alone.
    from web.page_guards import is_signed_in_admin

    return _health(show_details=is_signed_in_admin(req.headers.get("cookie")))


@bp.route(route="health/details", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def health_details(req: func.HttpRequest) -> func.HttpResponse:
    return _health(show_details=True)  # the host checked the function key


def _health(*, show_details: bool) -> func.HttpResponse:
    from blueprints.answers import http_response
    from http_answer import json_answer
    from ops.health import check_health
    from services import app_version, storage_account

    report = check_health(app_version(), storage_account, show_details=show_details)
    return http_response(json_answer(report.body, status=200 if report.healthy else 503))
