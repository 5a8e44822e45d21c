"""A function app that exercises every trigger shape the local host serves (tests only)."""

from __future__ import annotations

import json
import threading

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

timer_runs: list[func.TimerRequest] = []
queue_attempts: list[tuple[str, int]] = []  # (body, dequeue_count)
lock = threading.Lock()


@app.route(route="items/{id:int}", methods=["GET", "PUT"], auth_level=func.AuthLevel.ANONYMOUS)
def item(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    body = {
        "method": req.method,
        "route_params": dict(req.route_params),
        "params": dict(req.params),
        "header": req.headers.get("x-test"),
        "url": req.url,
        "function": context.function_name,
    }
    return func.HttpResponse(json.dumps(body), mimetype="application/json")


@app.route(route="echo", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def echo(req: func.HttpRequest) -> func.HttpResponse:
    status = int(req.params.get("status", "200"))
    return func.HttpResponse(
        req.get_body(), status_code=status, headers={"X-Echo": "yes", "Content-Type": "application/octet-stream"}
    )


@app.route(route="feeds/{token}.ics", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def feed(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(req.route_params["token"], mimetype="text/calendar")


@app.route(route="optional/{name?}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def optional(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(req.route_params.get("name", "(none)"))


@app.route(route="secure", methods=["GET"])
def secure(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("function level ok")


@app.route(route="admin/thing", methods=["POST"], auth_level=func.AuthLevel.ADMIN)
def admin_thing(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("admin level ok")


@app.route(route="async-hello", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def async_hello(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("hello from a coroutine")


@app.route(route="boom", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("the function failed")


@app.timer_trigger(schedule="* * * * * *", arg_name="timer", run_on_startup=True, use_monitor=False)
def every_second(timer: func.TimerRequest) -> None:
    with lock:
        timer_runs.append(timer)


@app.queue_trigger(arg_name="msg", queue_name="%SAMPLE_QUEUE%", connection="AzureWebJobsStorage")
def work(msg: func.QueueMessage) -> None:
    body = msg.get_body().decode()
    with lock:
        queue_attempts.append((body, msg.dequeue_count))
    if body == "fail-always" or (body == "fail-once" and msg.dequeue_count < 2):
        raise RuntimeError(f"cannot process {body}")
