"""The product as `make run` serves it, in-process (`local.inprocess`), shared by a module's tests.
Load with ``pytest_plugins = ["tests.app.linking_support"]``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
import requests

from local.azurite import Azurite
from local.inprocess import Product, start_product
from local.tls import TlsFiles

LinkingStack = Product


@pytest.fixture(scope="module")
def linking_stack(azurite: Azurite, tls_files: TlsFiles) -> Iterator[Product]:
    with ExitStack() as stack:
        yield start_product(stack, tls=tls_files, storage=azurite.connection_string)


def graph_as(
    product: Product,
    tech: int,
    method: str,
    path: str,
    *,
    session: requests.Session | None = None,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> requests.Response:
    """A Graph simulator request (``/v1.0{path}``) as the linked tech makes it, with the access
    token the product holds for them; an answer of 400 or more fails the test."""
    import services

    token = services.token_service().access_token_for(tech)
    answer = (session or product.browser()).request(
        method,
        f"{product.sim_url('graph')}/v1.0{path}",
        headers={"Authorization": f"Bearer {token}", **(headers or {})},
        timeout=30,
        **kwargs,
    )
    assert answer.status_code < 400, answer.text
    return answer


def unlink(product: Product, session: requests.Session, **fields: str) -> requests.Response:
    """Unlink as the tech does: the settings page's link to the confirmation, its form posted with
    ``fields`` (``feed``: keep or revoke; ``remove_events``: on), and the page it lands on."""
    from local.formwalk import follow, submit

    confirmation = session.get(f"{product.host_url}/api/settings/unlink")
    return follow(session, submit(session, confirmation, form_id="unlink", fields=fields))
