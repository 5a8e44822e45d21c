"""The whole product in this process, as `make run` serves it: the three simulators seeded with
the demo, the app's settings in the environment, and the local Functions host serving
function_app.py. Tests and benchmarks use it; Azurite is started by the caller."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from local import demo
from local.azurite import free_port
from local.formwalk import follow, forms_of, submit
from local.stack import Simulators, app_settings_for_sims, seed_demo, start_simulators
from local.tls import TlsFiles
from storage.errors import NotFound
from storage.links import Link


@dataclass
class Product:
    host_url: str
    sims: Simulators
    tls: TlsFiles
    secrets: demo.DemoSecrets
    function_key: str
    master_key: str
    env: dict[str, str]
    front: Any = None  # the in-process FunctionHost serving host_url (the soak moves it to a process)

    def browser(self) -> requests.Session:
        """A cookie-keeping session that trusts the stack's CA (and not REQUESTS_CA_BUNDLE)."""
        session = requests.Session()
        session.trust_env = False
        session.verify = str(self.tls.ca_bundle)
        return session

    def sim(self, name: str) -> Any:
        return self.sims.sims[name]

    def sim_url(self, name: str) -> str:
        return getattr(self.sims, name).url

    def start(self, session: requests.Session, *, purpose: str = "link") -> requests.Response:
        """Open /api/oauth/start and follow it to Microsoft's sign-in page."""
        answer = session.get(f"{self.host_url}/api/oauth/start", params={"purpose": purpose}, allow_redirects=False)
        if answer.status_code not in (302, 303):
            raise RuntimeError(f"/api/oauth/start answered {answer.status_code}: {answer.text[:300]}")
        return follow(session, answer)

    def sign_in(
        self,
        session: requests.Session,
        sign_in: str,
        *,
        purpose: str = "link",
        decision: str = "accept",
        syncro_token: bool = True,
    ) -> requests.Response:
        """Walk settings -> Microsoft sign-in -> consent (when asked) -> back; the last page. When
        linking asks for the tech's Syncro API token (Syncro hides owners), a demo tech gives theirs
        unless ``syncro_token`` is False (then the page asking for it is returned)."""
        page = follow(session, self.authorize(session, sign_in, purpose=purpose, decision=decision))
        token = self.secrets.tech_token(sign_in)
        if syncro_token and token and urlsplit(page.url).path == "/api/settings/syncro-token":
            page = follow(session, submit(session, page, form_id="syncro-token", fields={"token": token}))
        return page

    def authorize(
        self, session: requests.Session, sign_in: str, *, purpose: str = "link", decision: str = "accept"
    ) -> requests.Response:
        """Walk settings -> Microsoft sign-in -> consent (when asked), stopping at Microsoft's last
        answer: the redirect to the app's callback (its ``location`` holds the code and state)."""
        page = self.start(session, purpose=purpose)
        answer = submit(session, page, button="signin", fields={"email": sign_in, "password": self.secrets.password})
        if answer.status_code == 200 and any(decision in form.buttons for form in forms_of(answer.text)):
            answer = submit(session, answer, button=decision)
        return answer

    def storage(self) -> Any:
        import services

        return services.storage_account()

    def link_of(self, syncro_user_id: int) -> Link | None:
        """The tech's stored link, or None when there is none."""
        try:
            return self.storage().links.get_link(syncro_user_id)
        except NotFound:
            return None

    def forget_link(self, syncro_user_id: int) -> None:
        """Undo a link (token cache and link row) so the tech is unlinked again; either may be absent."""
        import services

        try:
            services.token_service().forget(syncro_user_id)
        except NotFound:
            pass
        try:
            self.storage().links.delete_link(syncro_user_id)
        except NotFound:
            pass


def install_settings(env: dict[str, str]) -> None:
    """Put the app's settings into the environment and forget everything built from the old ones."""
    import services

    os.environ.update(env)
    services.reset()


def start_product(
    stack: ExitStack,
    *,
    tls: TlsFiles,
    storage: str,
    table_prefix: str = "",
    background: Mapping[str, str] | None = None,
) -> Product:
    """Start simulators and host (stopped when ``stack`` closes); the environment is restored then too.

    The host serves HTTP only, unless ``background`` is given: then its queue triggers and timers
    run as well, as ``make run`` runs them (host.json's queue settings), on the app settings in
    ``background`` (``SYNC_QUEUE_NAME``, default a queue of this product's own, and the
    ``*_SCHEDULE`` settings, default the documented schedules)."""
    import function_app
    from local.host import FunctionHost, HostConfig
    from local.host.runtime import generate_keys

    saved = dict(os.environ)
    stack.callback(_restore_environment, saved)
    port = free_port()
    host_url = f"http://127.0.0.1:{port}"
    sims = start_simulators(tls, stack)
    secrets = demo.DemoSecrets.fresh()
    webhook = demo.DemoSecrets.fresh().client_secret
    seed_demo(sims, host_url=host_url, secrets=secrets, webhook_secret=webhook)
    env = app_settings_for_sims(
        sims, storage=storage, host_url=host_url, tls=tls, secrets=secrets, webhook_secret=webhook
    )
    env["TABLE_PREFIX"] = table_prefix or "p" + os.urandom(5).hex()
    if background is not None:
        env["SYNC_QUEUE_NAME"] = "jobs-" + os.urandom(5).hex()
        env.update(background)
    install_settings(env)
    keys = generate_keys()
    host = FunctionHost(
        function_app.app, config=HostConfig(), keys=keys, port=port, timers_enabled=False, queues_enabled=False
    )
    host.start()
    stack.callback(host.stop)
    if background is not None:
        _start_background(function_app.app, env, stack)
    return Product(host_url, sims, tls, secrets, keys.function_key, keys.master_key, env, host)


def _start_background(app: Any, env: dict[str, str], stack: ExitStack) -> None:
    """The app's queue pumps and timers on ``env``'s settings. The app read SYNC_QUEUE_NAME and
    the schedules when this process first imported it (blueprints/background.py), perhaps for
    another product, so they are taken from ``env`` here. Each timer ``<name>_timer`` runs on
    the ``TimerSchedules`` field ``<name>``."""
    from local.host import HostConfig
    from local.host.functions import QueueFunction, TimerFunction, read_functions
    from local.host.queues import QueuePump
    from local.host.timers import TimerRunner
    from settings import load_timer_schedules

    schedules = load_timer_schedules(env)  # SettingsError names a malformed one
    config = HostConfig.from_host_json(Path(__file__).resolve().parent.parent / "host.json")
    runners: list[Any] = []
    for function in read_functions(app, env):
        if isinstance(function, QueueFunction):
            if function.name == "sync_job":
                function = dataclasses.replace(function, queue_name=env["SYNC_QUEUE_NAME"])
            runners.append(QueuePump(function, env[function.connection_setting], config))
        elif isinstance(function, TimerFunction):
            schedule = getattr(schedules, function.name.removesuffix("_timer"), None)
            if schedule is None:
                raise ValueError(f"timer {function.name} has no schedule setting in settings.TimerSchedules")
            runners.append(TimerRunner(dataclasses.replace(function, schedule=schedule)))
    for runner in runners:
        runner.start()
        stack.callback(runner.stop)


def _restore_environment(saved: dict[str, str]) -> None:
    import services

    os.environ.clear()
    os.environ.update(saved)
    services.reset()
