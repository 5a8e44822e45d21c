"""The private ICS feed, and the admin's endpoint to issue or revoke a tech's feed URL.

The feed is anonymous at the Functions level: the unguessable token in its path is the
credential (calendar apps cannot send keys or cookies). The admin routes need a function key.
"""

import azure.functions as func

from blueprints.answers import http_response
from blueprints.audit import audited

bp = func.Blueprint()


@bp.route(route="ics/{token}.ics", methods=["GET", "HEAD"], auth_level=func.AuthLevel.ANONYMOUS)
def ics_feed(req: func.HttpRequest) -> func.HttpResponse:
    import services
    from ics.feed import serve_feed

    result = serve_feed(
        req.route_params.get("token", ""),
        method=req.method,
        headers={name.lower(): value for name, value in req.headers.items()},
        storage_account=services.storage_account,
        zone_name=lambda: services.syncro_client().account_time_zone(),
    )
    if result.status == 404 and req.method.upper() == "GET":
        from web.http import wants_html

        if wants_html(req.headers.get("accept")):  # a person in a browser: a page with the next step
            from web.page_guards import feed_not_found_page
            from web.pages import PAGE_HEADERS

            return http_response(feed_not_found_page(), beneath=PAGE_HEADERS)
    return http_response(result)


@bp.route(route="admin/feeds/{syncro_user_id:long}", methods=["POST", "DELETE"], auth_level=func.AuthLevel.FUNCTION)
@audited(lambda req: "issue_feed" if req.method.upper() == "POST" else "revoke_feed")
def admin_feeds(req: func.HttpRequest) -> func.HttpResponse:
    from web.admin_api import feed_url_action

    return http_response(feed_url_action(req.method, req.route_params.get("syncro_user_id", "")))
