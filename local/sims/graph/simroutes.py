"""The Graph simulator's own ``/_sim/...`` routes, beside the shared control routes:

- ``GET|PATCH /_sim/settings``                       read / change GraphSettings (400 on unknown fields)
- ``GET  /_sim/mailboxes``                           mailboxes and their calendars
- ``GET  /_sim/mailboxes/{oid}/events``              a mailbox's events as stored (UTC, with extended props)
- ``DELETE /_sim/mailboxes/{oid}/events``            drop every event of the mailbox, quietly (no
                                                     notifications, no mail; delta rounds see them go):
                                                     a clean calendar between tests
- ``GET  /_sim/mailboxes/{oid}/sent``                mail sent to attendees (invitations, updates, cancellations)
- ``POST /_sim/mailboxes/{oid}/delta/invalidate``    every delta token of the mailbox answers 410 from now on
- ``GET|DELETE /_sim/notifications[?status=...]``    deliveries (pending, sending, delivered, failed, dropped)
- ``POST /_sim/notifications/pause`` / ``release``   hold deliveries back / let them go
- ``GET  /_sim/subscriptions``                       every live subscription, with ``reauthorization``
                                                     (tokenExpiry, challengedSince, paused, held)
- ``DELETE /_sim/subscriptions/{id}``                 drop one silently (no lifecycle notification)
- ``POST /_sim/subscriptions/{id}/lifecycle``        ``{"event": "reauthorizationRequired|subscriptionRemoved|missed"}``
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from local.sims.graph.events import touch_endpoint
from local.sims.graph.instances import as_instance
from local.sims.graph.render import ReadOptions, render_event

if TYPE_CHECKING:
    from local.sims.graph.app import GraphSim


def stored_events(sim: GraphSim, oid: str) -> list[dict[str, Any]] | None:
    """Events (singles and series masters) of a mailbox rendered in UTC, plus where they live."""
    with sim.store.lock:
        mailbox = sim.store.mailboxes.get(oid)
        if mailbox is None:
            return None
        result = []
        for event in mailbox.events.values():
            rendered = render_event(as_instance(event), mailbox, ReadOptions())
            rendered["calendarName"] = mailbox.calendars[event.calendar_id].name
            rendered["singleValueExtendedProperties"] = [{"id": i, "value": v} for i, v in event.extended.values()]
            rendered["deletedOccurrences"] = sorted(event.deleted_occurrences)
            result.append(rendered)
        return result


def sim_routes(sim: GraphSim) -> list[Route]:
    async def settings(request: Request) -> Response:
        if request.method == "PATCH":
            try:
                sim.settings.apply(await request.json())
            except ValueError as error:
                return JSONResponse({"error": str(error)}, status_code=400)
        return JSONResponse(sim.settings.to_dict())

    async def mailboxes(request: Request) -> Response:
        with sim.store.lock:
            listed = [
                {
                    "oid": m.oid,
                    "email": m.email,
                    "upn": m.upn,
                    "mail": m.mail,
                    "name": m.name,
                    "tenant_id": m.tenant_id,
                    "personal": m.personal,
                    "calendars": [
                        {"id": c.id, "name": c.name, "is_default": c.is_default} for c in m.calendars.values()
                    ],
                }
                for m in sim.store.mailboxes.values()
            ]
        return JSONResponse({"mailboxes": listed})

    async def events(request: Request) -> Response:
        if request.method == "DELETE":
            with sim.store.lock:
                mailbox = sim.store.mailboxes.get(request.path_params["oid"])
                if mailbox is None:
                    return JSONResponse({"error": "no such mailbox"}, status_code=404)
                dropped = len(mailbox.events)
                mailbox.events.clear()
            return JSONResponse({"deleted": dropped})
        found = stored_events(sim, request.path_params["oid"])
        if found is None:
            return JSONResponse({"error": "no such mailbox"}, status_code=404)
        return JSONResponse({"events": found})

    async def sent(request: Request) -> Response:
        with sim.store.lock:
            mailbox = sim.store.mailboxes.get(request.path_params["oid"])
            if mailbox is None:
                return JSONResponse({"error": "no such mailbox"}, status_code=404)
            mails = [dataclasses.asdict(m) for m in mailbox.sent]
        return JSONResponse({"count": len(mails), "sent": mails})

    async def invalidate(request: Request) -> Response:
        return JSONResponse({"invalidated": sim.delta.invalidate(request.path_params["oid"])})

    async def notifications(request: Request) -> Response:
        if request.method == "DELETE":
            sim.notifier.clear()
            return Response(status_code=204)
        return JSONResponse(sim.notifier.snapshot(request.query_params.get("status")))

    async def pause(request: Request) -> Response:
        sim.notifier.pause()
        return JSONResponse({"paused": True})

    async def release(request: Request) -> Response:
        sim.notifier.release()
        return JSONResponse({"paused": False})

    async def subscriptions(request: Request) -> Response:
        return JSONResponse({"subscriptions": sim.subscriptions.describe("")})

    async def remove(request: Request) -> Response:
        if not sim.subscriptions.remove_silently(request.path_params["sid"]):
            return JSONResponse({"error": "no such subscription"}, status_code=404)
        return Response(status_code=204)

    async def lifecycle(request: Request) -> Response:
        try:
            body = await request.json()
            item = sim.subscriptions.lifecycle(request.path_params["sid"], str(body.get("event")))
        except KeyError:
            return JSONResponse({"error": "no such subscription"}, status_code=404)
        except (ValueError, AttributeError) as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        return JSONResponse({"sent": item}, status_code=202)

    return [
        Route("/_sim/settings", settings, methods=["GET", "PATCH"]),
        Route("/_sim/mailboxes", mailboxes, methods=["GET"]),
        Route("/_sim/mailboxes/{oid}/events", events, methods=["GET", "DELETE"]),
        Route("/_sim/mailboxes/{oid}/sent", sent, methods=["GET"]),
        Route("/_sim/mailboxes/{oid}/delta/invalidate", invalidate, methods=["POST"]),
        Route("/_sim/mailboxes/{oid}/events/{event_id}/touch", touch_endpoint(sim.store), methods=["POST"]),
        Route("/_sim/notifications", notifications, methods=["GET", "DELETE"]),
        Route("/_sim/notifications/pause", pause, methods=["POST"]),
        Route("/_sim/notifications/release", release, methods=["POST"]),
        Route("/_sim/subscriptions", subscriptions, methods=["GET"]),
        Route("/_sim/subscriptions/{sid}", remove, methods=["DELETE"]),
        Route("/_sim/subscriptions/{sid}/lifecycle", lifecycle, methods=["POST"]),
    ]
