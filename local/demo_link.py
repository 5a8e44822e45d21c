"""The demo stack links its first technician at start-up through the product's own pages, as a
browser would: settings page -> Microsoft sign-in (the identity simulator) -> consent -> back ->
the tech's own Syncro API token (Syncro hides owners) -> two-way on, default calendar kept. So `make run` syncs from the first minute, and a failure here
is a failure of the linking flow itself."""

from __future__ import annotations

import html
import re

import requests

from local.formwalk import follow, submit


class DemoLinkFailed(RuntimeError):
    pass


def link_through_pages(
    host_url: str, *, sign_in: str, password: str, ca_bundle: str, syncro_token: str | None, two_way: bool = True
) -> str:
    """Sign ``sign_in`` in on the settings page, give their Syncro API token when linking asks for
    it (the second step when Syncro hides owners), save their choices and make their calendar feed
    URL, which is returned; raises DemoLinkFailed."""
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE must not replace the stack's CA
    session.verify = ca_bundle
    page = follow(session, session.get(f"{host_url}/api/oauth/start", allow_redirects=False, timeout=30))
    _expect(page, 200, "the Microsoft sign-in page")
    answer = submit(session, page, button="signin", fields={"email": sign_in, "password": password})
    if answer.status_code == 200:  # the consent page, the first time
        answer = submit(session, answer, button="accept")
    settings = follow(session, answer)
    _expect(settings, 200, "the page after sign-in")
    if "/api/settings/syncro-token" in settings.url:
        if not syncro_token:
            raise DemoLinkFailed(f"linking asks for {sign_in}'s Syncro API token and the demo has none")
        settings = follow(session, submit(session, settings, form_id="syncro-token", fields={"token": syncro_token}))
        _expect(settings, 200, "the settings page after the Syncro token step")
    saved = submit(
        session,
        settings,
        form_id="choices",
        fields={"two_way": "on"} if two_way else {},
        drop=() if two_way else ("two_way",),
    )
    page = follow(session, saved)
    _expect(page, 200, "the settings page after saving")
    with_feed = follow(session, submit(session, page, form_id="feed"))
    _expect(with_feed, 200, "the settings page with the new feed URL")
    found = re.search(r'value="(https?://[^"]+/api/ics/[^"]+\.ics)"', with_feed.text)
    if found is None:
        raise DemoLinkFailed("the settings page showed no feed URL after making one")
    return html.unescape(found.group(1))


def _expect(response: requests.Response, status: int, what: str) -> None:
    if response.status_code != status:
        raise DemoLinkFailed(f"{what} answered {response.status_code} at {response.url}: {response.text[:300]}")
