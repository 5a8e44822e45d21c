"""Handlers for the user, calendars, events, instances and calendarView."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from local.sims.graph.context import Ctx
from local.sims.graph.errors import GraphError, GraphResponse, bad_request
from local.sims.graph.instances import Instance, as_instance, instances_between, overlaps, series_instances
from local.sims.graph.model import Calendar
from local.sims.graph.odata import parse_filter, parse_orderby
from local.sims.graph.payload import parse_event_write
from local.sims.graph.reading import page_size, paged, read_options
from local.sims.graph.render import ReadOptions, render_calendar, render_event, render_user
from local.sims.graph.router import GraphRouter
from local.sims.graph.settings import GraphSettings
from local.sims.graph.store import GraphStore
from local.sims.graph.timefmt import format_stamp, parse_query_instant

CONFLICT_MESSAGE = "The change key passed in the request does not match the current change key for the item."

# Each collection is reachable through the default calendar and through an explicit one.
EVENT_COLLECTIONS = ["/me/events", "/me/calendar/events", "/me/calendars/{calendar}/events"]
VIEW_COLLECTIONS = ["/me/calendarView", "/me/calendar/calendarView", "/me/calendars/{calendar}/calendarView"]


class EventRoutes:
    def __init__(self, store: GraphStore, settings: GraphSettings) -> None:
        self.store = store
        self.settings = settings

    def register(self, router: GraphRouter) -> None:
        router.add("GET", "/me", self.get_me, "user")
        router.add("GET", "/me/calendars", self.list_calendars, "read")
        router.add("POST", "/me/calendars", self.create_calendar, "write")
        router.add("GET", "/me/calendar", self.get_calendar, "read")
        router.add("GET", "/me/calendars/{calendar}", self.get_calendar, "read")
        for collection in EVENT_COLLECTIONS:
            router.add("GET", collection, self.list_events, "read")
            router.add("POST", collection, self.create_event, "write")
            router.add("GET", collection + "/{id}", self.get_event, "read")
            router.add("PATCH", collection + "/{id}", self.update_event, "write")
            router.add("DELETE", collection + "/{id}", self.delete_event, "write")
            router.add("POST", collection + "/{id}/cancel", self.cancel_event, "write")
            router.add("GET", collection + "/{id}/instances", self.list_instances, "read")
        for collection in VIEW_COLLECTIONS:
            router.add("GET", collection, self.calendar_view, "read")

    # --- user and calendars ----------------------------------------------------------------
    def get_me(self, ctx: Ctx) -> GraphResponse:
        body = {"@odata.context": f"{ctx.base}/$metadata#users/$entity", **render_user(ctx.me)}
        # Entra ID keeps the sign-in name and the mail address apart; `mail` may be null.
        body.update({"mail": ctx.me.mail, "userPrincipalName": ctx.me.upn})
        return GraphResponse(200, body)

    def list_calendars(self, ctx: Ctx) -> GraphResponse:
        with self.store.lock:
            calendars = [render_calendar(c, ctx.me) for c in ctx.me.calendars.values()]
        return GraphResponse(
            200, {"@odata.context": f"{ctx.base}/$metadata#users('{ctx.me.oid}')/calendars", "value": calendars}
        )

    def create_calendar(self, ctx: Ctx) -> GraphResponse:
        body = ctx.json()
        if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not body["name"].strip():
            raise GraphError(400, "ErrorInvalidRequest", "Your request can't be completed. A name is required.")
        calendar = self.store.add_calendar(ctx.me, body["name"].strip())
        context = f"{ctx.base}/$metadata#users('{ctx.me.oid}')/calendars/$entity"
        return GraphResponse(201, {"@odata.context": context, **render_calendar(calendar, ctx.me)})

    def get_calendar(self, ctx: Ctx) -> GraphResponse:
        calendar = self._calendar(ctx)
        context = f"{ctx.base}/$metadata#users('{ctx.me.oid}')/calendars/$entity"
        return GraphResponse(200, {"@odata.context": context, **render_calendar(calendar, ctx.me)})

    def _calendar(self, ctx: Ctx) -> Calendar:
        with self.store.lock:
            if "calendar" in ctx.params:
                return self.store.calendar(ctx.me, ctx.params["calendar"])
            return ctx.me.default_calendar

    # --- events ----------------------------------------------------------------------------
    def list_events(self, ctx: Ctx) -> GraphResponse:
        return self._listing(ctx, "events", lambda events: [as_instance(e) for e in events])

    def create_event(self, ctx: Ctx) -> GraphResponse:
        write = parse_event_write(ctx.json(), accept_iana=self.settings.accept_iana_time_zones)
        options = read_options(ctx, self.settings, write="create", odata=False)
        status = 201
        with self.store.lock:
            calendar = self._calendar(ctx)
            transaction_id = write.fields.get("transactionId")
            existing = self.store.find_by_transaction_id(ctx.me, transaction_id) if transaction_id else None
            if existing is not None and self.settings.transaction_id_dedupe:
                event, status = existing, self.settings.transaction_id_duplicate_status
            else:
                event = self.store.create_event(ctx.me, calendar, write)
            body = self._entity(ctx, as_instance(event), options)
            self._server_touch_after_write(ctx, event.id)
        return GraphResponse(status, body, {**self._applied(ctx), "Location": f"{ctx.base}/me/events('{event.id}')"})

    def get_event(self, ctx: Ctx) -> GraphResponse:
        options = read_options(ctx, self.settings)
        with self.store.lock:
            item = self._item(ctx)
            body = self._entity(ctx, item, options)
        return GraphResponse(200, body, self._applied(ctx))

    def update_event(self, ctx: Ctx) -> GraphResponse:
        write = parse_event_write(ctx.json(), accept_iana=self.settings.accept_iana_time_zones)
        options = read_options(ctx, self.settings, write="update", odata=False)
        with self.store.lock:
            self._item(ctx)
            item = self.store.update_item(ctx.me, ctx.params["id"], write, ctx.request.header("if-match"))
            body = self._entity(ctx, item, options)
            self._server_touch_after_write(ctx, item.id)
        return GraphResponse(200, body, self._applied(ctx))

    def delete_event(self, ctx: Ctx) -> GraphResponse:
        with self.store.lock:
            self._item(ctx)
            self.store.delete_item(ctx.me, ctx.params["id"], ctx.request.header("if-match"))
        return GraphResponse(204)

    def cancel_event(self, ctx: Ctx) -> GraphResponse:
        body = ctx.json() if ctx.request.body.strip() else {}
        comment = body.get("comment", "") if isinstance(body, dict) else None
        if not isinstance(comment, str):
            raise bad_request("Cannot convert the literal to the expected type 'Edm.String'.", "RequestBodyRead")
        with self.store.lock:
            self._item(ctx)
            self.store.delete_item(
                ctx.me, ctx.params["id"], ctx.request.header("if-match"), cancel=True, comment=comment
            )
        return GraphResponse(202)

    def list_instances(self, ctx: Ctx) -> GraphResponse:
        start = parse_query_instant(ctx.query("startDateTime"), "startDateTime")
        end = parse_query_instant(ctx.query("endDateTime"), "endDateTime")
        options = read_options(ctx, self.settings)
        with self.store.lock:
            item = self._item(ctx)
            if item.kind != "seriesMaster":
                raise GraphError(
                    400,
                    "ErrorInvalidRequest",
                    "Your request can't be completed. The item isn't a recurring series master.",
                )
            instances = [i for i in series_instances(item.event, end) if overlaps(i, start, end)]
            rendered = [render_event(i, ctx.me, options) for i in instances]
        context = f"{ctx.base}/$metadata#users('{ctx.me.oid}')/events('{item.id}')/instances"
        body = paged(ctx, rendered, page_size(ctx, self.settings.default_page_size), context)
        return GraphResponse(200, body, self._applied(ctx))

    def calendar_view(self, ctx: Ctx) -> GraphResponse:
        start = parse_query_instant(ctx.query("startDateTime"), "startDateTime")
        end = parse_query_instant(ctx.query("endDateTime"), "endDateTime")
        return self._listing(ctx, "calendarView", lambda events: instances_between(events, start, end))

    # --- helpers ---------------------------------------------------------------------------
    def _listing(self, ctx: Ctx, segment: str, select: Callable[[list[Any]], list[Instance]]) -> GraphResponse:
        """A page of the addressed calendar's items chosen by ``select``, with $filter, $orderby and paging."""
        options = read_options(ctx, self.settings)
        matches = parse_filter(ctx.query("$filter"))
        order = parse_orderby(ctx.query("$orderby"))
        with self.store.lock:
            calendar = self._calendar(ctx)
            items = select(self.store.events_of(ctx.me, calendar.id))
            if matches is not None:
                items = [i for i in items if matches(i)]
            if order is not None:
                items.sort(key=order[0], reverse=order[1])
            rendered = [render_event(i, ctx.me, options) for i in items]
        context = f"{ctx.base}/$metadata#users('{ctx.me.oid}')/{segment}"
        body = paged(ctx, rendered, page_size(ctx, self.settings.default_page_size), context)
        return GraphResponse(200, body, self._applied(ctx))

    def _item(self, ctx: Ctx) -> Instance:
        """The addressed item. Event ids are unique per mailbox, and Graph answers an item
        addressed through ``/calendars/{id}/events/{event}`` whatever calendar holds it (the
        calendar in the path must exist; microsoft-graph-docs#391): a client learns where the
        event lives from its ``parentFolderId``, never from the path."""
        self._transient_conflict()
        item = self.store.get_item(ctx.me, ctx.params["id"])
        if "calendar" in ctx.params:
            self._calendar(ctx)  # an unknown calendar is still 404
        return item

    def _transient_conflict(self) -> None:
        """Exchange sometimes answers 412 with no If-Match at all (reported); clients retry."""
        with self.store.lock:
            if self.settings.transient_conflict_next <= 0:
                return
            self.settings.transient_conflict_next -= 1
        raise GraphError(412, "ErrorIrresolvableConflict", CONFLICT_MESSAGE)

    def _server_touch_after_write(self, ctx: Ctx, item_id: str) -> None:
        """Exchange's own processing right after a write moves the changeKey again (reported),
        so the etag this response carries is already stale."""
        with self.store.lock:
            if self.settings.server_touch_after_next_writes <= 0:
                return
            self.settings.server_touch_after_next_writes -= 1
            self.store.server_touch(ctx.me, item_id)

    def _entity(self, ctx: Ctx, item: Instance, options: ReadOptions) -> dict[str, Any]:
        context = f"{ctx.base}/$metadata#users('{ctx.me.oid}')/events/$entity"
        return {"@odata.context": context, **render_event(item, ctx.me, options)}

    @staticmethod
    def _applied(ctx: Ctx) -> dict[str, str]:
        return {"Preference-Applied": ", ".join(ctx.applied)} if ctx.applied else {}


def touch_endpoint(store: GraphStore) -> Callable[[Request], Awaitable[Response]]:
    """``POST /_sim/mailboxes/{oid}/events/{event_id}/touch``: a change by Exchange itself (no client
    write) to one event or occurrence; answers the new changeKey, etag and lastModifiedDateTime."""

    async def touch(request: Request) -> Response:
        mailbox = store.mailboxes.get(request.path_params["oid"])
        if mailbox is None:
            return JSONResponse({"error": "no such mailbox"}, status_code=404)
        try:
            item = store.server_touch(mailbox, request.path_params["event_id"])
        except GraphError as error:
            return JSONResponse({"error": error.message}, status_code=error.status)
        return JSONResponse(
            {
                "id": item.id,
                "changeKey": item.change_key,
                "@odata.etag": f'W/"{item.change_key}"',
                "lastModifiedDateTime": format_stamp(item.modified),
            }
        )

    return touch
