"""``make run``: the whole product on this machine.

Starts Azurite, the identity, Graph and Syncro simulators (loopback HTTPS with a trustme CA),
seeds the demo account and tenant, starts the Functions host with settings pointing at all of
them, writes ``.local/stack.json`` (the contract in DESIGN.md) and stays in the foreground
until Ctrl-C or SIGTERM, then stops everything it started.

With ``local.settings.json`` holding ``"USE_SIMULATORS": "false"``, the same host runs
against the real Microsoft and Syncro services configured there (Azurite still provides
storage when ``AzureWebJobsStorage`` is ``UseDevelopmentStorage=true``).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
import threading
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from local import demo
from local.azurite import Azurite, free_port, start_azurite
from local.demo_link import DemoLinkFailed, link_through_pages
from local.host.config import HostConfig, read_local_settings
from local.host.http import HostKeys
from local.host.logs import configure_logging
from local.host.runtime import FunctionHost, generate_keys
from local.serve import RunningServer, serve_in_thread, stop_servers
from local.tls import TlsFiles, make_tls_files

log = logging.getLogger("stack")
ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = Path(os.environ.get("STACK_STATE_DIR", ROOT / ".local"))


def port_or_free(preferred: int) -> int:
    """``preferred`` if nothing listens there, else 0 (a free port)."""
    if preferred == 0:
        return 0
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            return 0
    return preferred


@dataclass
class Simulators:
    identity: RunningServer
    graph: RunningServer
    syncro: RunningServer
    sims: dict[str, Any] = field(default_factory=dict)


def start_simulators(tls: TlsFiles, stack: ExitStack) -> Simulators:
    from local.sims.control import SimClock, SimControl
    from local.sims.graph.app import GraphSim
    from local.sims.graph.settings import GraphSettings
    from local.sims.identity import IdentitySim
    from local.sims.syncro import SyncroSim
    from local.sims.tokens import TokenIssuer

    clock = SimClock()  # one clock, so token and subscription expiry agree across simulators
    issuer = TokenIssuer()
    identity = IdentitySim(control=SimControl(clock=clock), issuer=issuer)
    # The demo meets Graph's documented delta quirks (replays, duplicates, lag, empty pages) from the
    # first minute, as the product will in a real tenant; every other setting keeps its strict default.
    graph = GraphSim(
        control=SimControl(clock=clock),
        issuer=issuer,
        settings=GraphSettings.create(delta_quirks=True),
        ca_bundle=str(tls.ca_bundle),
    )
    stack.callback(graph.close)  # stops its notification delivery threads
    syncro = SyncroSim(control=SimControl(clock=clock), ca_bundle=str(tls.ca_bundle))
    servers: dict[str, RunningServer] = {}
    stack.callback(lambda: stop_servers(list(servers.values())))  # together, not one grace period each
    for name, sim, env_port in (
        ("identity", identity, "SIM_IDENTITY_PORT"),
        ("graph", graph, "SIM_GRAPH_PORT"),
        ("syncro", syncro, "SIM_SYNCRO_PORT"),
    ):
        servers[name] = serve_in_thread(sim.app, tls=tls, port=int(os.environ.get(env_port, "0")), name=f"sim-{name}")
    return Simulators(**servers, sims={"identity": identity, "graph": graph, "syncro": syncro})


def seed_demo(sims: Simulators, *, host_url: str, secrets: demo.DemoSecrets, webhook_secret: str) -> list[dict]:
    now = datetime.now(UTC)
    identity_users = sims.sims["identity"].seed(
        demo.identity_seed(secrets, redirect_uri=f"{host_url}/api/oauth/callback")
    )["users"]
    sims.sims["graph"].seed(
        demo.graph_seed([u for u in identity_users if u["email"] != demo.DISPATCHER.email], now=now)
    )
    syncro = sims.sims["syncro"]
    syncro.seed(demo.syncro_seed(secrets, now=now))
    syncro.update_settings({"notification_urls": [f"{host_url}/api/syncro/notifications/{webhook_secret}"]})
    return identity_users


def app_settings_for_sims(
    sims: Simulators, *, storage: str, host_url: str, tls: TlsFiles, secrets: demo.DemoSecrets, webhook_secret: str
) -> dict[str, str]:
    import base64

    return {
        "AzureWebJobsStorage": storage,
        "PUBLIC_BASE_URL": host_url,
        "MS_CLIENT_ID": demo.CLIENT_ID,
        "MS_CLIENT_SECRET": secrets.client_secret,
        # Bound to the demo tenant, as docs/deploy.md binds a real one (docs/security.md).
        "MS_AUTHORITY": f"{sims.identity.url}/{demo.TENANT_ID}",
        "GRAPH_BASE_URL": f"{sims.graph.url}/v1.0",
        "SYNCRO_BASE_URL": f"{sims.syncro.url}/api/v1",
        "SYNCRO_API_TOKEN": secrets.syncro_token,
        "SYNCRO_WEBHOOK_SECRET": webhook_secret,
        "TOKEN_ENCRYPTION_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "CA_BUNDLE": str(tls.ca_bundle),
    }


def stack_json(
    *,
    host_url: str,
    keys: HostKeys,
    sims: Simulators,
    tls: TlsFiles,
    storage: str,
    secrets: demo.DemoSecrets,
    linked: set[int],
) -> dict[str, Any]:
    """Exactly the keys DESIGN.md promises to other tools."""
    return {
        "host": host_url,
        "function_key": keys.function_key,
        "identity": {
            # The product's own authority: bound to the demo tenant (docs/security.md); MSAL's
            # password grant works there too, as with Entra ID.
            "authority": f"{sims.identity.url}/{demo.TENANT_ID}",
            "client_id": demo.CLIENT_ID,
            "client_secret": secrets.client_secret,
            "tenant_id": demo.TENANT_ID,
        },
        "graph": f"{sims.graph.url}/v1.0",
        "syncro": f"{sims.syncro.url}/api/v1",
        "syncro_token": secrets.syncro_token,
        "ca_bundle": str(tls.ca_bundle),
        "storage": storage,
        "users": [
            {
                "email": tech.sign_in,  # what MSAL signs in with (the UPN)
                "password": secrets.password,
                "syncro_user_id": tech.syncro_user_id,
                "personal": tech.personal,
                "linked": tech.syncro_user_id in linked,  # the first tech, through the product's own pages
                "role": "admin" if tech is demo.DISPATCHER else "tech",  # the dispatcher holds SyncAdmin
            }
            for tech in (*demo.TECHS, demo.DISPATCHER)
        ],
    }


def demo_banner(secrets: demo.DemoSecrets, *, linked: set[int]) -> str:
    """Who to sign in as: the dispatcher (admin) and each tech, with the demo password."""
    lines = [f"Demo sign-ins (password {secrets.password}):"]
    lines.append(f"  admin: {demo.DISPATCHER.sign_in} ({demo.DISPATCHER.name}, holds the SyncAdmin role)")
    for tech in demo.TECHS:
        state = "linked, syncing" if tech.syncro_user_id in linked else "not linked yet"
        kind = "personal account: Microsoft turns it away" if tech.personal else state
        token = secrets.tech_tokens.get(tech.syncro_user_id)
        extra = f", Syncro token {token}" if token and not tech.personal and tech.syncro_user_id not in linked else ""
        lines.append(f"  tech:  {tech.sign_in} ({tech.name}, {kind}{extra})")
    return "\n".join(lines)


def write_private_json(path: Path, data: dict[str, Any]) -> None:
    """Created 0600 (it holds demo credentials and the function key), never chmodded after."""
    from local.private_files import write_private_text

    write_private_text(path, json.dumps(data, indent=2) + "\n")


def run() -> int:
    configure_logging()
    local_file = ROOT / "local.settings.json"
    local_values = read_local_settings(local_file) if local_file.exists() else {}
    use_sims = local_values.get("USE_SIMULATORS", "true").lower() != "false"
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())

    with ExitStack() as stack:
        azurite: Azurite | None = None
        if use_sims or local_values.get("AzureWebJobsStorage", "") in ("", "UseDevelopmentStorage=true"):
            azurite = start_azurite(
                blob_port=port_or_free(int(os.environ.get("AZURITE_BLOB_PORT", "10000"))),
                queue_port=port_or_free(int(os.environ.get("AZURITE_QUEUE_PORT", "10001"))),
                table_port=port_or_free(int(os.environ.get("AZURITE_TABLE_PORT", "10002"))),
            )
            stack.callback(azurite.stop)
            log.info("azurite started", extra={"table_port": azurite.table_port, "queue_port": azurite.queue_port})
        storage = azurite.connection_string if azurite else local_values["AzureWebJobsStorage"]
        keys = generate_keys()
        # The host URL must be known before seeding (redirect URI, webhook URLs), so pick the port now.
        host_port = port_or_free(int(os.environ.get("FUNCTIONS_HTTP_PORT", "7071"))) or free_port()
        host_url = f"http://127.0.0.1:{host_port}"

        if use_sims:
            tls = make_tls_files(STATE_DIR / "tls")
            sims = start_simulators(tls, stack)
            secrets = demo.DemoSecrets.fresh()
            webhook_secret = demo.DemoSecrets.fresh().client_secret
            seed_demo(sims, host_url=host_url, secrets=secrets, webhook_secret=webhook_secret)
            app_env = app_settings_for_sims(
                sims, storage=storage, host_url=host_url, tls=tls, secrets=secrets, webhook_secret=webhook_secret
            )
        else:
            app_env = {**local_values, "AzureWebJobsStorage": storage}
        os.environ.update(app_env)  # the app reads its settings from the environment, as in Azure

        from settings import SettingsError, load_settings

        try:
            settings = load_settings()
        except SettingsError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        import function_app

        config = HostConfig.from_host_json(ROOT / "host.json", max_request_body_bytes=settings.max_request_body_bytes)
        host = FunctionHost(function_app.app, config=config, keys=keys, port=host_port)
        host.start()
        stack.callback(host.stop)

        linked: set[int] = set()
        feed_url = ""
        if use_sims:
            first = demo.TECHS[0]
            try:
                feed_url = link_through_pages(
                    host_url,
                    sign_in=first.sign_in,
                    password=secrets.password,
                    ca_bundle=str(tls.ca_bundle),
                    syncro_token=secrets.tech_token(first.sign_in),
                )
                linked.add(first.syncro_user_id)
            except DemoLinkFailed as error:
                log.error("the demo could not link %s: %s", first.sign_in, error)
            write_private_json(
                STATE_DIR / "stack.json",
                stack_json(
                    host_url=host_url, keys=keys, sims=sims, tls=tls, storage=storage, secrets=secrets, linked=linked
                ),
            )
        print(f"\nSettings page: {host_url}/api/settings", flush=True)
        print(f"Admin page:    {host_url}/api/admin", flush=True)
        print(f"Health:        {host_url}/api/health", flush=True)
        if use_sims:
            print(demo_banner(secrets, linked=linked), flush=True)
            if feed_url:
                print(f"{demo.TECHS[0].name}'s calendar feed: {feed_url}", flush=True)
            print(f"Stack details: {STATE_DIR / 'stack.json'} (demo users, keys, simulator URLs)", flush=True)
        print("Press Ctrl-C to stop.", flush=True)
        stopping.wait()
        log.info("stopping everything")
    return 0


if __name__ == "__main__":
    sys.exit(run())
