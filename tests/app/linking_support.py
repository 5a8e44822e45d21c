"""The product as `make run` serves it, in-process (`local.inprocess`), shared by a module's tests.
Load with ``pytest_plugins = ["tests.app.linking_support"]``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from local.azurite import Azurite
from local.inprocess import Product, start_product
from local.tls import TlsFiles

LinkingStack = Product


@pytest.fixture(scope="module")
def linking_stack(azurite: Azurite, tls_files: TlsFiles) -> Iterator[Product]:
    with ExitStack() as stack:
        yield start_product(stack, tls=tls_files, storage=azurite.connection_string)
