"""How a request asked to read: Prefer headers, $select/$expand, and paging of lists."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from local.sims.graph.context import Ctx
from local.sims.graph.odata import parse_expand, parse_int, parse_select
from local.sims.graph.render import ReadOptions
from local.sims.graph.settings import GraphSettings
from local.sims.graph.timefmt import resolve_zone


def read_options(ctx: Ctx, settings: GraphSettings, *, write: str | None = None, odata: bool = True) -> ReadOptions:
    """Zone, body type and projection the caller asked for. ``write`` ("create" or "update")
    marks a write response, whose zone follows its own settings (Graph differs there)."""
    options = ReadOptions(wrap_html=settings.wrap_html_bodies)
    _choose_zone(ctx, settings, write, options)
    body_type = ctx.prefer.get("outlook.body-content-type", "").lower()
    if body_type in ("text", "html"):
        options.body_text = body_type == "text"
        _apply(ctx, f'outlook.body-content-type="{body_type}"')
    if ctx.prefer.get("idtype", "").lower() == "immutableid":
        # Ids here never change, so the preference is always honoured.
        _apply(ctx, 'IdType="ImmutableId"')
    if odata:
        options.select = parse_select(ctx.query("$select"))
        options.expand_extended = parse_expand(ctx.query("$expand"))
    return options


def _choose_zone(ctx: Ctx, settings: GraphSettings, write: str | None, options: ReadOptions) -> None:
    """Prefer's zone on reads (and on writes if the setting says so); otherwise UTC or each
    event's own zone, as the read/create/update setting says."""
    zone_name = ctx.prefer.get("outlook.timezone")
    if zone_name:
        zone = resolve_zone(zone_name, accept_iana=settings.accept_iana_time_zones)
        if write is None or settings.write_response_honours_prefer_timezone:
            options.zone_name, options.zone = zone_name, zone
            _apply(ctx, f'outlook.timezone="{zone_name}"')
            return
    defaults = {"create": settings.create_response_zone, "update": settings.update_response_zone}
    if defaults.get(write or "", settings.read_zone_without_prefer) == "event":
        options.zone_name, options.zone = None, None
    else:
        options.zone_name, options.zone = "UTC", UTC


def _apply(ctx: Ctx, value: str) -> None:
    if value not in ctx.applied:
        ctx.applied.append(value)


def page_size(ctx: Ctx, default: int) -> int:
    """$top wins, then Prefer odata.maxpagesize, then the default."""
    top = parse_int(ctx.query("$top"), "$top", low=1, high=1000)
    if top is not None:
        return top
    max_page = ctx.prefer.get("odata.maxpagesize")
    if max_page and max_page.isdigit() and int(max_page) > 0:
        _apply(ctx, f"odata.maxpagesize={int(max_page)}")
        return int(max_page)
    return default


def paged(ctx: Ctx, items: list[dict[str, Any]], size: int, context: str) -> dict[str, Any]:
    """One page of ``items`` from $skip, with a nextLink carrying the other query options."""
    skip = parse_int(ctx.query("$skip"), "$skip", low=0, high=10**9) or 0
    page = items[skip : skip + size]
    result: dict[str, Any] = {"@odata.context": context, "value": page}
    if skip + size < len(items):
        params = {k: v for k, v in ctx.request.query.items() if k.lower() != "$skip"}
        params["$skip"] = str(skip + size)
        result["@odata.nextLink"] = ctx.link(ctx.request.path, params)
    return result
