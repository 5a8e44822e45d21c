"""Webhooks: Graph's change and lifecycle notifications, Syncro's Notification Center, and the
queue of Graph subscription work. Anonymous at the Functions level (neither Graph nor Syncro can
send a function key): Graph's are checked by subscription and clientState, Syncro's by the
secret in its URL (docs/realtime.md)."""

import azure.functions as func

from blueprints.answers import http_response
from http_answer import Answer
from realtime import SUBSCRIPTION_QUEUE

bp = func.Blueprint()
HOOK = func.AuthLevel.ANONYMOUS


def _response(answer: Answer) -> func.HttpResponse:
    return http_response(answer, beneath={"Cache-Control": "no-store"})


@bp.route(route="graph/notifications", methods=["POST"], auth_level=HOOK)
async def graph_notifications(req: func.HttpRequest) -> func.HttpResponse:
    # A coroutine, run on the worker's event loop: a burst of notifications is answered without
    # a thread per request (its storage calls run in threads of their own).
    from realtime.notifications import receive_notifications

    return _response(await receive_notifications(req.params, req.headers, req.get_body()))


@bp.route(route="graph/lifecycle", methods=["POST"], auth_level=HOOK)
def graph_lifecycle(req: func.HttpRequest) -> func.HttpResponse:
    from realtime.lifecycle import receive_lifecycle

    return _response(receive_lifecycle(req.params, req.headers, req.get_body()))


@bp.route(route="syncro/notifications/{secret}", methods=["POST"], auth_level=HOOK)
def syncro_notifications(req: func.HttpRequest) -> func.HttpResponse:
    from realtime.syncro_webhook import receive_syncro_notification

    secret = req.route_params.get("secret", "")
    return _response(receive_syncro_notification(secret, req.headers, req.get_body()))


@bp.queue_trigger(arg_name="msg", queue_name=SUBSCRIPTION_QUEUE, connection="AzureWebJobsStorage")
def graph_subscription_job(msg: func.QueueMessage) -> None:
    from realtime.lifecycle import run_subscription_job

    run_subscription_job(msg.get_body().decode("utf-8"))
