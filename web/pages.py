"""Server-rendered HTML for the settings page, sign-in, errors and the admin overview.

Each ``render_*`` takes a view (`web.settings_views`, `web.admin_views`, `web.error_views`) and
returns the page as a string; the blueprint sends the handler's answer with `PAGE_HEADERS` beneath
its own. Templates live in ``web/templates`` and are rendered with autoescaping on and
`StrictUndefined`, so a value from Syncro, Microsoft or a form can never become markup, and a
misspelt field fails the tests instead of printing nothing.

The pages need no JavaScript. The only script is a few static lines that reveal Copy buttons; it
and the stylesheet are inline and allowed by their SHA-256 hashes in `CONTENT_SECURITY_POLICY`,
so the policy is a constant (no per-response nonce to thread through) and forbids everything else.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from web import routes, settings_views
from web.admin_views import AdminView, RecycleBinView
from web.error_views import ErrorView
from web.settings_views import SettingsView, SignInView, SyncroTokenView
from web.words import ago, ahead, day, utc

_TEMPLATES = Path(__file__).parent / "templates"

# Small, readable on a phone, no external assets. No "<" in here: it is inserted verbatim.
CSS = """
:root{color-scheme:light dark;--fg:#1b1b1f;--bg:#fff;--muted:#555;--accent:#0a5cc2;--line:#c8c8d0;--warn:#8a4b00;--bad:#a4161a}
@media (prefers-color-scheme:dark){:root{--fg:#e8e8ec;--bg:#16161a;--muted:#b0b0b8;--accent:#7cb4ff;--line:#44444c;--warn:#f0b25a;--bad:#ff8a8a}}
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header,main{max-width:46rem;margin:0 auto;padding:0 1rem}
header{border-bottom:1px solid var(--line)}
.brand{font-weight:600;margin:.75rem 0}
main{padding-bottom:3rem}
.wide header,.wide main{max-width:80rem}
h1{font-size:1.6rem;line-height:1.25}
h2{font-size:1.2rem;margin-top:2rem;border-top:1px solid var(--line);padding-top:1rem}
h3{font-size:1.05rem;margin:0 0 .5rem}
a{color:var(--accent)}
.skip{position:absolute;left:-999px;top:0;background:var(--bg);padding:.5rem}
.skip:focus{left:.5rem}
.button,button{display:inline-block;font:inherit;padding:.55rem 1rem;border-radius:.35rem;border:1px solid var(--accent);background:var(--accent);color:var(--bg);text-decoration:none;cursor:pointer;min-height:44px}
button.danger,.button.danger{background:var(--bad);border-color:var(--bad)}
button[data-copy]{background:transparent;color:var(--accent)}
:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
fieldset{border:1px solid var(--line);border-radius:.35rem;padding:.75rem 1rem;margin:0 0 1rem}
legend{font-weight:600;padding:0 .25rem}
.choice{display:flex;flex-wrap:wrap;align-items:center;gap:.25rem .6rem;margin:.4rem 0}
.choice input{width:1.25rem;height:1.25rem;margin:0;flex:none}
.choice label{flex:1 1 0;min-width:0}
.choice .hint{flex-basis:100%;margin:0 0 0 1.85rem}
.hint,.small{color:var(--muted);font-size:.92rem}
label{font-weight:500}
.field label{display:block}
.copy{display:flex;gap:.5rem}
.copy input{flex:1;min-width:0;font:inherit;font-family:ui-monospace,monospace;font-size:.9rem;padding:.5rem;border:1px solid var(--line);border-radius:.35rem;background:transparent;color:inherit}
.copied{min-height:1.5em;margin:.25rem 0;font-size:.92rem}
.notice{padding:.5rem .75rem;margin:1rem 0}
.notice.done{border-left:4px solid var(--accent)}
.notice.warning{border:2px dashed var(--warn);border-left-width:8px}
.notice.problem{border:3px double var(--bad);border-left-width:8px}
.notice.warning strong{color:var(--warn)}
.notice.problem strong{color:var(--bad)}
.alert{border:2px solid var(--warn);border-radius:.35rem;padding:.75rem 1rem;margin:1rem 0}
.warning{color:var(--warn)}
.problem{color:var(--bad)}
.problem .advice{display:block;color:var(--fg)}
.status{display:grid;grid-template-columns:max-content 1fr;gap:.35rem 1rem}
.status dt{font-weight:600}
.status dd{margin:0}
.details code{white-space:pre-wrap;word-break:break-word}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.95rem}
caption{text-align:left;font-weight:600;padding:.5rem 0}
th,td{text-align:left;vertical-align:top;border-bottom:1px solid var(--line);padding:.4rem .5rem}
tbody th{font-weight:500}
.field{margin:.75rem 0}
.field input[type=email],select{font:inherit;padding:.45rem;border:1px solid var(--line);border-radius:.35rem;background:var(--bg);color:inherit;max-width:100%}
header{display:flex;flex-wrap:wrap;justify-content:space-between;align-items:center;gap:0 1rem}
.account p{margin:.5rem 0}
button.quiet{background:transparent;color:var(--accent);padding:.2rem .5rem;min-height:0}
form.inline{display:inline}
.badge{display:inline-block;border:1px solid currentColor;border-radius:.25rem;padding:0 .3rem;font-size:.85rem;white-space:nowrap}
.vh{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%);white-space:nowrap}
.cards{list-style:none;padding:0;display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,22rem),1fr));gap:1rem}
.card{border:1px solid var(--line);border-radius:.35rem;padding:.75rem 1rem;height:100%}
.card h3{margin:0}
.card .status{grid-template-columns:max-content minmax(0,1fr);font-size:.95rem}
.card dd{overflow-wrap:anywhere}
.actions{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;margin:.5rem 0}
.token-form{display:flex;flex-wrap:wrap;gap:.4rem;align-items:center;margin:.5rem 0}
.token-form label{flex-basis:100%}
.token-form input{flex:1 1 10rem;min-width:0;font:inherit;padding:.45rem;border:1px solid var(--line);border-radius:.35rem;background:var(--bg);color:inherit}
summary{cursor:pointer;font-weight:600;margin:.5rem 0;min-height:44px;display:flex;align-items:center}
@media (max-width:30rem){.status{grid-template-columns:1fr}.status dd{margin-bottom:.5rem}}
"""

# Reveals the Copy buttons (hidden without JS, where the read-only field is selectable instead).
COPY_SCRIPT = """
document.querySelectorAll("button[data-copy]").forEach(function (b) {
  var f = document.getElementById(b.getAttribute("data-copy"));
  var s = document.getElementById(f.id + "-copied");
  var manual = function () { f.select(); s.textContent = "Selected: press Ctrl+C (or Cmd+C) to copy."; };
  b.hidden = false;
  b.addEventListener("click", function () {
    if (!navigator.clipboard) { manual(); return; }
    navigator.clipboard.writeText(f.value).then(function () { s.textContent = "Copied."; }, manual);
  });
});
"""


# While a tech's first sync (or queued changes) is under way, the status section follows it
# without a reload: it asks /api/settings/status every few seconds for two minutes at most.
STATUS_SCRIPT = """
(function () {
  var live = document.getElementById("live-status");
  if (!live) { return; }
  var url = live.getAttribute("data-status-url"), tries = 0;
  var retry = function () { tries += 1; if (tries < 40) { setTimeout(tick, 3000); } };
  var tick = function () {
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}}).then(function (r) {
      return r.ok ? r.json() : null;
    }).then(function (s) {
      if (!s) { retry(); return; }
      document.getElementById("last-sync").textContent = s.last_sync;
      document.getElementById("waiting").textContent = s.waiting;
      live.textContent = s.summary;
      var box = document.getElementById("notices-box"), list = document.getElementById("notices");
      if (box && list && s.notices && s.notices.length) {
        list.textContent = "";
        s.notices.forEach(function (line) { var li = document.createElement("li"); li.textContent = line; list.appendChild(li); });
        box.hidden = false;
      }
      if (!s.settled) { retry(); }
    }, retry);
  };
  setTimeout(tick, 1500);
})();
"""


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


CONTENT_SECURITY_POLICY = (
    "default-src 'none'; "
    f"style-src {_csp_hash(CSS)}; "
    f"script-src {_csp_hash(COPY_SCRIPT)} {_csp_hash(STATUS_SCRIPT)}; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

# Headers for every HTML page: the pages show personal data, so nothing caches them.
PAGE_HEADERS: Mapping[str, str] = MappingProxyType(
    {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
)


def render_settings(view: SettingsView) -> str:
    return _render(
        "settings.html",
        view,
        copy_script=view.ics_url is not None,
        status_script=settings_views.live_status(view) is not None,
    )


def render_syncro_token(view: SyncroTokenView) -> str:
    return _render("syncro_token.html", view)


def render_unlink(view: SyncroTokenView) -> str:
    """The unlink confirmation (its view needs only the session's CSRF token and address)."""
    return _render("unlink.html", view)


def render_sign_in(view: SignInView) -> str:
    return _render("sign_in.html", view)


def render_error(view: ErrorView) -> str:
    """The error page; answer with ``view.status``."""
    return _render("error.html", view, copy_script=view.copy is not None)


def render_admin(view: AdminView) -> str:
    return _render(
        "admin.html",
        view,
        wide=True,
        copy_script=bool(view.new_feed_url),
        linked_count=sum(r.linked for r in view.rows),
    )


def render_recycle_bin(view: RecycleBinView) -> str:
    return _render("recycle_bin.html", view, wide=True)


def _render(
    name: str, view: Any, *, copy_script: bool = False, status_script: bool = False, wide: bool = False, **extra: Any
) -> str:
    return (
        _environment()
        .get_template(name)
        .render(
            view=view,
            css=CSS,
            copy_script=COPY_SCRIPT if copy_script else None,
            status_script=STATUS_SCRIPT if status_script else None,
            wide=wide,  # the admin table needs the room; reading pages stay narrow
            **extra,
        )
    )


@functools.cache
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(_TEMPLATES),
        autoescape=select_autoescape(["html"], default_for_string=True, default=True),
        undefined=StrictUndefined,
        auto_reload=False,  # templates ship with the code; no stat() per render
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        start_url=routes.OAUTH_START_PATH,
        settings_path=routes.SETTINGS_PATH,
        unlink_path=routes.UNLINK_PATH,
        feed_path=routes.FEED_PATH,
        sync_now_path=routes.SYNC_NOW_PATH,
        syncro_token_path=routes.SYNCRO_TOKEN_PATH,
        sign_out_path=routes.SIGN_OUT_PATH,
        admin_overrides_path=routes.ADMIN_OVERRIDES_PATH,
        admin_remove_path=routes.ADMIN_REMOVE_PATH,
        admin_tech_path=routes.ADMIN_TECH_PATH,
        admin_path=routes.ADMIN_PATH,
        admin_bin_path=routes.ADMIN_BIN_PATH,
        syncro_token_steps=settings_views.SYNCRO_TOKEN_STEPS,
        settings_status_path=routes.SETTINGS_STATUS_PATH,
        status_lines=settings_views.status_lines,
        live_status=settings_views.live_status,
        notice_lines=settings_views.notice_lines,
        syncro_token_place=settings_views.SYNCRO_TOKEN_PLACE,
    )
    env.filters["ago"] = ago
    env.filters["ahead"] = ahead
    env.filters["iso"] = lambda moment: utc(moment).isoformat()
    env.filters["utc"] = lambda moment: day(utc(moment)) + utc(moment).strftime(", %H:%M UTC")
    env.tests["web_url"] = is_web_url
    return env


def is_web_url(value: object) -> bool:
    """Only http(s) values become links: a ``javascript:`` URL survives HTML escaping."""
    return isinstance(value, str) and urlsplit(value).scheme.lower() in {"https", "http"}
