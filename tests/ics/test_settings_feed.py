"""The settings page's feed section: the webcal Subscribe link and the one-line instructions."""

from __future__ import annotations

from datetime import UTC, datetime

from web.pages import render_settings
from web.settings_views import SettingsView

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def view(ics_url: str | None, *, feed_issued: bool = True) -> SettingsView:
    return SettingsView(
        tech_name="Ann", syncro_user_id="5560138523", csrf_token="c", now=NOW, ics_url=ics_url, feed_issued=feed_issued
    )


def test_a_fresh_url_gets_a_webcal_subscribe_link_beside_it() -> None:
    html = render_settings(view("https://sync.example.com/api/ics/abc.ics"))
    assert 'href="webcal://sync.example.com/api/ics/abc.ics"' in html
    assert ">Subscribe</a>" in html
    assert 'value="https://sync.example.com/api/ics/abc.ics"' in html


def test_instructions_for_outlook_on_the_web_and_google_calendar() -> None:
    html = render_settings(view("https://sync.example.com/api/ics/abc.ics"))
    assert "Outlook on the web: Calendar, Add calendar, Subscribe from web" in html
    assert "Google Calendar" in html and "From URL" in html


def test_no_subscribe_link_without_a_url_or_for_an_odd_scheme() -> None:
    assert "webcal://" not in render_settings(view(None))
    assert view("javascript:alert(1)").ics_webcal_url is None
    assert "webcal://" not in render_settings(view("javascript:alert(1)"))
    assert view("http://127.0.0.1:7071/api/ics/t.ics").ics_webcal_url == "webcal://127.0.0.1:7071/api/ics/t.ics"
