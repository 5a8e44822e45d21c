"""Fixtures of the browser tests: Debian's Chromium driven by Playwright, one fresh context per test,
and a screenshot of every test's final page in the run's artifacts folder.

- ``playwright`` (package): the sync Playwright driver (stopped after the last browser test, see below).
- ``browser`` (package): Chromium at ``/usr/bin/chromium`` (``CHROMIUM_PATH`` overrides), headless, with the
  flags this closed network needs. It trusts the session's loopback TLS (``tls_files``) and nothing else.
- ``page`` (per test): a page in a new browser context (its own cookies and storage).
- ``artifacts_dir`` (session): ``$ARTIFACTS_DIR``, else ``<repo>/.artifacts/<UTC run timestamp>/``.
- ``final_screenshot`` (autouse): on teardown, pass or fail, saves ``<module>.<test>.png`` of the final page.

Trusting the test TLS: Chromium is launched with ``--ignore-certificate-errors-spki-list=<SPKI hashes>`` of the
certificates the session's servers present (``tls_files.cert_chain``: the loopback certificate the test CA issued,
which every simulator and test server started with ``tls_files`` uses). Chromium then accepts a chain that fails
ordinary verification only when a certificate in it has one of those public keys; any other bad certificate is
still refused. (The CA's own key would not do: servers do not send the root, and the switch looks only at the
presented chain.) ``ignore_https_errors=True`` would accept every certificate, so a test could no longer see a
TLS mistake, and adding the CA to an NSS database needs certutil and a home folder of our own. The switch is
honoured only with a ``--user-data-dir``, which Playwright gives every browser it launches (a new, empty one).

Playwright's own browser download does not work on our machines; ``make test`` installs Debian's chromium.
Without it these tests fail (not skip), saying so. While Playwright's sync API is running, ``asyncio.run()`` fails
on the main thread ("cannot be called from a running event loop"), so browser tests must not use it.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from local.tls import TlsFiles

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
# Headless in a sandbox-less container, and quiet on a network that refuses Google's hosts.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # a small /dev/shm (containers) would crash the renderer
]
VIEWPORT = {"width": 1024, "height": 768}
_RUN_STAMP = os.environ.get("TEST_RUN_STAMP") or datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")  # tests/conftest.py


def spki_hashes(pem_path: Path) -> list[str]:
    """Base64 SHA-256 of each certificate's SubjectPublicKeyInfo: the form Chromium's SPKI switches take."""
    hashes = []
    for certificate in x509.load_pem_x509_certificates(pem_path.read_bytes()):
        spki = certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        hashes.append(base64.b64encode(hashlib.sha256(spki).digest()).decode())
    return hashes


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    directory = Path(os.environ.get("ARTIFACTS_DIR") or REPO / ".artifacts" / _RUN_STAMP)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


# Package scope, not session: while sync Playwright runs, its asyncio loop counts as running on the main thread, so
# asyncio.run() elsewhere (msgraph-sdk tests) would fail. Both stop once the last test of tests/browser is done.
@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="package")
def browser(playwright: Playwright, tls_files: TlsFiles) -> Iterator[Browser]:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        found = shutil.which("chromium")
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}"
            + (f" (one is on PATH at {found}: point CHROMIUM_PATH at it)" if found else "")
            + ". `make test` installs Debian's chromium (`make chromium`, as root or with sudo); "
            "Playwright's own browser download does not work here.",
            pytrace=False,
        )
    trust = "--ignore-certificate-errors-spki-list=" + ",".join(spki_hashes(tls_files.cert_chain))
    launched = playwright.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_FLAGS, trust])
    try:
        yield launched
    finally:
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT, locale="en-US", ignore_https_errors=False)
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def _screenshot_name(item: pytest.Item) -> str:
    module = Path(item.fspath).stem
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{module}.{item.name}") + ".png"


@pytest.fixture(autouse=True)
def final_screenshot(request: pytest.FixtureRequest, page: Page, artifacts_dir: Path) -> Iterator[Path]:
    """Yields where the screenshot will go; taken after the test (before its page closes), pass or fail."""
    path = artifacts_dir / _screenshot_name(request.node)
    yield path
    if not page.is_closed():
        page.screenshot(path=str(path), full_page=True)
