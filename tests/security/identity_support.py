"""Shared by the identity tests: a stranger's Microsoft tenant, sign-ins that stop at any step,
and the product's settings changed for one test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import requests

from local import demo
from local.inprocess import Product, install_settings

EVIL_TENANT_ID = "e0e0e0e0-1111-4222-8333-444455556666"


def seed_users(product: Product, users: list[dict], *, tenants: list[dict] | None = None) -> list[dict]:
    """Add Microsoft users (each with a mailbox in the Graph simulator, "Calendar" and "Work Orders")."""
    for user in users:
        user.setdefault("password", product.secrets.password)
    seeded = product.sim("identity").seed({"tenants": tenants or [], "users": users})["users"]
    product.sim("graph").seed(demo.graph_seed(seeded, now=datetime.now(UTC)))
    return seeded


def stranger(product: Product, *, mail: str, upn: str | None = None, roles: list[str] | None = None) -> str:
    """A user of another Microsoft tenant whose admin gave them ``mail`` (any address: Entra ID lets a
    tenant's admin set it) and, if asked, our app's roles in their tenant. Returns the sign-in name."""
    name = upn or f"user-{uuid.uuid4().hex[:8]}@evil.example"
    seed_users(
        product,
        [{"upn": name, "mail": mail, "tenant_id": EVIL_TENANT_ID, "app_roles": {demo.CLIENT_ID: roles or []}}],
        tenants=[{"id": EVIL_TENANT_ID, "name": "Evil Corp", "domain": "evil.example"}],
    )
    return name


@contextmanager
def settings_changed(product: Product, **changes: str) -> Iterator[None]:
    """The product runs on ``changes`` over its settings for the block (an empty value removes one)."""
    import os

    install_settings({name: value for name, value in changes.items() if value})
    for name, value in changes.items():
        if not value:
            os.environ.pop(name, None)
    try:
        yield
    finally:
        for name in changes:
            os.environ.pop(name, None)
        install_settings(product.env)


def multi_tenant(product: Product) -> dict[str, str]:
    """An authority that lets any tenant's work accounts reach the callback, bound by ALLOWED_TENANT_IDS."""
    return {
        "MS_AUTHORITY": f"{product.sim_url('identity')}/organizations",
        "ALLOWED_TENANT_IDS": demo.TENANT_ID,
    }


def session_cookie(session: requests.Session) -> str | None:
    return next((c.value for c in session.cookies if c.name == "calendar_session"), None)
