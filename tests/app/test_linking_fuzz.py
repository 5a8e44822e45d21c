"""Bad input on the linking pages: whatever a client sends, a 4xx page (or a redirect), never a
500, never the input reflected unescaped, and nothing stored."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local import demo
from tests.app.linking_support import LinkingStack

pytest_plugins = ["tests.app.linking_support"]

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
HOSTILE = st.sampled_from(["<script>alert(1)</script>", '"><img src=x>', "{{7*7}}", "%00", "\u202e", "a" * 3000])
TEXT = st.one_of(st.text(max_size=60), HOSTILE)
FIELDS = st.dictionaries(
    st.sampled_from(["state", "code", "error", "error_description", "admin_consent", "tenant", "purpose", "login_hint",
                     "csrf_token", "calendar_id", "two_way", "remove_events", "ms_email", "syncro_user_id", "x"]),
    TEXT,
    max_size=5,
)  # fmt: skip


def _assert_safe(response, sent: dict[str, str]) -> None:
    assert response.status_code < 500, response.text[:500]
    assert "Traceback" not in response.text
    for value in sent.values():
        if "<" in value and len(value) > 3:
            assert value not in response.text, "input reflected unescaped"


@FUZZ
@given(params=FIELDS, route=st.sampled_from(["oauth/start", "oauth/callback", "settings", "admin"]))
def test_any_query_gets_a_page_not_an_error(linking_stack: LinkingStack, params: dict[str, str], route: str) -> None:
    response = linking_stack.browser().get(
        f"{linking_stack.host_url}/api/{route}", params=params, allow_redirects=False
    )
    _assert_safe(response, params)


@FUZZ
@given(
    form=FIELDS,
    route=st.sampled_from(["settings", "settings/feed", "settings/unlink", "settings/signout", "admin/overrides"]),
    content_type=st.sampled_from(["application/x-www-form-urlencoded", "application/json", "text/plain", None]),
)
def test_any_post_without_a_valid_session_changes_nothing(
    linking_stack: LinkingStack, form: dict[str, str], route: str, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    body = "&".join(f"{k}={v}" for k, v in form.items()).encode("utf-8", "surrogatepass")
    response = linking_stack.browser().post(
        f"{linking_stack.host_url}/api/{route}", data=body, headers=headers, allow_redirects=False
    )
    _assert_safe(response, form)
    assert response.status_code in (401, 403, 415)
    assert list(linking_stack.storage().links.list_links()) == []


@FUZZ
@given(form=FIELDS)
def test_a_signed_in_tech_posting_junk_is_refused_and_nothing_changes(
    linking_stack: LinkingStack, signed_in, form: dict[str, str]
) -> None:
    session, csrf = signed_in
    before = linking_stack.storage().links.get_link(demo.TECHS[0].syncro_user_id)
    form = {**form, "csrf_token": csrf}
    if "calendar_id" not in form:
        form["calendar_id"] = "not-a-calendar"
    response = session.post(f"{linking_stack.host_url}/api/settings", data=form, allow_redirects=False)
    _assert_safe(response, form)
    assert response.status_code == 400
    after = linking_stack.storage().links.get_link(demo.TECHS[0].syncro_user_id)
    assert (after.calendar_id, after.two_way) == (before.calendar_id, before.two_way)


@pytest.fixture(scope="module")
def signed_in(linking_stack: LinkingStack):
    import re

    session = linking_stack.browser()
    page = linking_stack.sign_in(session, demo.TECHS[0].sign_in)
    assert page.status_code == 200
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    yield session, csrf
    import services

    services.token_service().forget(demo.TECHS[0].syncro_user_id)
    linking_stack.storage().links.delete_link(demo.TECHS[0].syncro_user_id)
