"""The app settings `infra/main.bicep` gives the Function App are the ones the app reads.

The template is parsed with pycep-parser and its ``siteConfig.appSettings`` evaluated with the
parameters file's values (Azure-made values, such as the identity's client id, filled in with
placeholders). Key Vault references are checked and replaced by valid secret values, and the
result goes through ``settings.load_settings``, the validation the app runs at start-up:
nothing missing, nothing misnamed, nothing the app would ignore.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from settings import ConflictPolicy, load_settings
from tests.infra.bicep import ROOT, Template, parameter_file_values, parse_template

VAULT_URI = "https://kv-calsync-abcdefghij.vault.azure.net/"
CLIENT_ID = "0d7b2a52-1c1e-4c7b-9f55-6f0a3c2f1e11"
RUNTIME = {
    "identity.properties.clientId": CLIENT_ID,
    "identity.properties.principalId": "6a1f0f5e-0000-4000-8000-00000000000a",
    "identity.id": "/subscriptions/s/resourceGroups/rg-sync/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id",
    "keyVault.properties.vaultUri": VAULT_URI,
    "appInsights.properties.ConnectionString": (
        "InstrumentationKey=00000000-0000-0000-0000-000000000001;"
        "IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/"
    ),
    # Azure's own endpoints of the account, trailing slash included (a sovereign cloud's differ).
    "storage.properties.primaryEndpoints.blob": "https://stcalsync.blob.core.windows.net/",
    "storage.properties.primaryEndpoints.queue": "https://stcalsync.queue.core.windows.net/",
    "storage.properties.primaryEndpoints.table": "https://stcalsync.table.core.windows.net/",
}
TENANT_ID = "72f988bf-0000-0000-0000-000000000000"  # the tenant of the subscription deployed to
RESOURCE_GROUP = {"name": "rg-sync", "id": "/subscriptions/s/resourceGroups/rg-sync", "location": "westeurope"}

# Settings the template sets that settings.py does not read, each read by someone else.
HOST_SETTINGS = {
    "AzureWebJobsStorage__blobServiceUri": "the Functions host: its locks, keys and the deployment package",
    "AzureWebJobsStorage__credential": "the Functions host: connect to storage with a managed identity",
    "AzureWebJobsStorage__clientId": "the Functions host: which managed identity (the user-assigned one)",
    "AZURE_CLIENT_ID": "DefaultAzureCredential in storage/account.py: which managed identity",
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "the Functions host: where telemetry goes",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "the Functions host: send telemetry with the identity's token",
}

# The value each Key Vault secret holds once docs/deploy.md's steps are done (valid shapes).
FERNET_KEY = base64.urlsafe_b64encode(os.urandom(32)).decode()
OLD_FERNET_KEY = base64.urlsafe_b64encode(os.urandom(32)).decode()
SECRET_VALUES = {
    "ms-client-secret": "a-client-secret-value",
    "syncro-api-token": "T0k3n-from-syncro",
    "syncro-webhook-secret": "a-long-random-url-safe-string",
    "token-encryption-key": FERNET_KEY,
    "token-encryption-old-keys": f"1:{OLD_FERNET_KEY}",
}

KEY_VAULT_REFERENCE = re.compile(
    r"@Microsoft\.KeyVault\(SecretUri=(?P<vault>https://[^/]+/)secrets/(?P<name>[a-z0-9-]+)\)"
)


class RecordingEnv(Mapping[str, str]):
    """An environment that remembers every name the code under test looked up."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)
        self.looked_up: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.looked_up.add(name)
        return self._values[name]

    def get(self, name: str, default: Any = None) -> Any:
        self.looked_up.add(name)
        return self._values.get(name, default)

    def __contains__(self, name: object) -> bool:
        if isinstance(name, str):
            self.looked_up.add(name)
        return name in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


@pytest.fixture(scope="module")
def parsed() -> dict[str, Any]:
    return parse_template()


def template(parsed: dict[str, Any], **overrides: Any) -> Template:
    return Template(
        parsed,
        {**parameter_file_values(), **overrides},
        runtime=RUNTIME,
        resource_group=RESOURCE_GROUP,
        tenant_id=TENANT_ID,
    )


def rendered_app_settings(deployment: Template) -> dict[str, str]:
    site = deployment.resource("functionApp")
    entries = deployment.evaluate(site["properties"]["siteConfig"]["appSettings"])
    names = [entry["name"] for entry in entries]
    assert len(names) == len(set(names)), f"an app setting appears twice: {names}"
    for entry in entries:
        assert isinstance(entry["value"], str), f"{entry['name']} is not a string: {entry['value']!r}"
    return {entry["name"]: entry["value"] for entry in entries}


def resolve_key_vault_references(settings: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """The settings as the platform hands them to the app, and which secret each setting names."""
    resolved, secret_of = {}, {}
    for name, value in settings.items():
        match = KEY_VAULT_REFERENCE.fullmatch(value)
        if match is None:
            assert "@Microsoft.KeyVault" not in value, f"{name} holds a malformed Key Vault reference: {value}"
            resolved[name] = value
            continue
        assert match["vault"] == VAULT_URI, f"{name} points at another vault: {value}"
        secret_of[name] = match["name"]
        resolved[name] = SECRET_VALUES[match["name"]]
    return resolved, secret_of


def test_the_rendered_settings_pass_the_apps_validation_with_nothing_misnamed(parsed: dict[str, Any]) -> None:
    deployment = template(parsed)
    app_settings = rendered_app_settings(deployment)
    resolved, _ = resolve_key_vault_references(app_settings)

    env = RecordingEnv(resolved)
    settings = load_settings(env)  # raises SettingsError naming any missing or malformed setting

    not_read = set(app_settings) - env.looked_up
    assert not_read == set(HOST_SETTINGS), (
        f"set by the template but read by nobody we know of (misnamed?): {sorted(not_read - set(HOST_SETTINGS))}; "
        f"expected but not set: {sorted(set(HOST_SETTINGS) - not_read)}"
    )

    app_name = deployment.variable("appName")
    assert settings.storage.uses_identity
    # The account's own endpoints reach the app (no suffix written in the template or the app).
    assert settings.storage.table_endpoint == "https://stcalsync.table.core.windows.net"
    assert settings.storage.queue_endpoint == "https://stcalsync.queue.core.windows.net"
    assert settings.ms_authority == f"https://login.microsoftonline.com/{TENANT_ID}"  # tenant-bound, never /common
    assert settings.public_base_url == f"https://{app_name}.azurewebsites.net"
    assert settings.syncro_base_url == "https://yoursubdomain.syncromsp.com/api/v1"
    assert settings.ms_client_id == parameter_file_values()["msClientId"]
    assert settings.ms_client_secret == SECRET_VALUES["ms-client-secret"]
    assert settings.syncro_api_token == SECRET_VALUES["syncro-api-token"]
    assert settings.syncro_webhook_secret == SECRET_VALUES["syncro-webhook-secret"]
    assert settings.token_encryption_key == FERNET_KEY.encode()
    assert settings.token_encryption_old_keys == {}
    assert settings.conflict_policy is ConflictPolicy.LATEST
    assert (settings.window_past_days, settings.window_future_days) == (60, 60)
    assert settings.ca_bundle is None
    assert app_settings["AzureWebJobsStorage__clientId"] == app_settings["AZURE_CLIENT_ID"] == CLIENT_ID
    assert app_settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == f"ClientId={CLIENT_ID};Authorization=AAD"


def test_every_secret_is_a_key_vault_reference_and_nothing_else_is(parsed: dict[str, Any]) -> None:
    app_settings = rendered_app_settings(template(parsed, useOldEncryptionKeys=True))
    _, secret_of = resolve_key_vault_references(app_settings)
    assert secret_of == {
        "MS_CLIENT_SECRET": "ms-client-secret",
        "SYNCRO_API_TOKEN": "syncro-api-token",
        "SYNCRO_WEBHOOK_SECRET": "syncro-webhook-secret",
        "TOKEN_ENCRYPTION_KEY": "token-encryption-key",
        "TOKEN_ENCRYPTION_OLD_KEYS": "token-encryption-old-keys",
    }


def test_a_key_rotation_deployment_adds_the_old_keys_and_the_new_key_id(parsed: dict[str, Any]) -> None:
    app_settings = rendered_app_settings(template(parsed, useOldEncryptionKeys=True, tokenEncryptionKeyId="2027-01"))
    resolved, _ = resolve_key_vault_references(app_settings)
    settings = load_settings(resolved)
    assert settings.token_encryption_key_id == "2027-01"
    assert settings.token_encryption_old_keys == {"1": OLD_FERNET_KEY.encode()}


def test_parameters_reach_the_settings(parsed: dict[str, Any]) -> None:
    deployment = template(
        parsed,
        publicBaseUrl="https://sync.msp.example",
        signInTenantId="3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b",
        conflictPolicy="outlook",
        syncWindowPastDays=30,
        syncWindowFutureDays=365,
        syncQueueName="jobs",
        extraAppSettings={"IMPORT_EXISTING_EVENTS": "true", "SYNCRO_WEB_URL": "https://acme.syncromsp.com"},
    )
    resolved, _ = resolve_key_vault_references(rendered_app_settings(deployment))
    settings = load_settings(resolved)
    assert settings.public_base_url == "https://sync.msp.example"
    assert settings.ms_authority == "https://login.microsoftonline.com/3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b"
    assert settings.conflict_policy is ConflictPolicy.OUTLOOK
    assert (settings.window_past_days, settings.window_future_days) == (30, 365)
    assert settings.sync_queue == "jobs"
    assert settings.sync.import_existing is True
    assert settings.sync.syncro_web_url == "https://acme.syncromsp.com"
    assert deployment.output("settingsPageUrl") == "https://sync.msp.example/api/settings"


def test_the_admin_groups_and_allowed_tenants_are_set_only_when_given(parsed: dict[str, Any]) -> None:
    """Step 8's settings: absent by default (the app then allows only the sign-in tenant and the
    SyncAdmin app role); given, they reach the app as written."""
    plain = rendered_app_settings(template(parsed))
    assert not {"ALLOWED_TENANT_IDS", "ADMIN_GROUP_IDS", "ADMIN_EMAILS", "ALLOW_PERSONAL_ACCOUNTS"} & set(plain)
    groups = "5b0a7c1e-1111-4a2b-8c3d-000000000001,5b0a7c1e-1111-4a2b-8c3d-000000000002"
    tenants = "3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b"
    given = rendered_app_settings(
        template(parsed, signInTenantId="organizations", allowedTenantIds=tenants, adminGroupIds=groups)
    )
    assert given["ADMIN_GROUP_IDS"] == groups
    assert given["ALLOWED_TENANT_IDS"] == tenants
    assert given["MS_AUTHORITY"] == "https://login.microsoftonline.com/organizations"
    resolved, _ = resolve_key_vault_references(given)
    settings = load_settings(resolved)  # the app accepts a multi-tenant authority only with the list
    assert settings.allowed_tenant_ids == {tenants}
    assert settings.admin_group_ids == set(groups.split(","))


def test_the_outputs_are_the_products_routes(parsed: dict[str, Any]) -> None:
    deployment = template(parsed)
    base = f"https://{deployment.variable('appName')}.azurewebsites.net"
    # The routes DESIGN.md promises (docs/deploy.md hands these URLs to the admin).
    assert deployment.output("oauthRedirectUri") == f"{base}/api/oauth/callback"
    assert deployment.output("syncroWebhookBaseUrl") == f"{base}/api/syncro/notifications/"
    assert deployment.output("graphWebhookUrl") == f"{base}/api/graph/notifications"
    assert deployment.output("graphLifecycleUrl") == f"{base}/api/graph/lifecycle"
    assert deployment.output("settingsPageUrl") == f"{base}/api/settings"
    assert deployment.output("icsBaseUrl") == f"{base}/api/ics/"
    assert deployment.output("publicBaseUrl") == base


@pytest.mark.parametrize("base_name", ["ab", "calsync", "zz9999zz99", "MyMSP"])
def test_generated_names_follow_azures_naming_rules(parsed: dict[str, Any], base_name: str) -> None:
    deployment = template(parsed, baseName=base_name)
    assert re.fullmatch(r"[a-z0-9]{3,24}", deployment.variable("storageAccountName"))  # CKV_AZURE_43's rule
    vault = deployment.variable("keyVaultName")
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9-]{1,22}[A-Za-z0-9]", vault) and "--" not in vault
    app = deployment.variable("appName")
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]{0,58}[A-Za-z0-9]", app)


def test_the_parameters_file_sets_every_required_parameter_and_nothing_unknown(parsed: dict[str, Any]) -> None:
    declared = parsed["parameters"]
    given = parameter_file_values()
    assert set(given) <= set(declared)
    required = {name for name, spec in declared.items() if spec.get("default") is None}
    assert required <= set(given), f"not in main.parameters.json: {sorted(required - set(given))}"
    python_type = {"string": str, "int": int, "bool": bool, "object": dict, "array": list}
    for name, value in given.items():
        assert type(value) is python_type[declared[name]["type"]], (
            f"{name} = {value!r} is not a {declared[name]['type']}"
        )
        allowed = [d["argument"] for d in declared[name]["decorators"] if d["type"] == "allowed"]
        assert not allowed or value in allowed[0], f"{name} = {value!r} is not one of {allowed[0]}"


def test_no_literal_shadows_a_name(parsed: dict[str, Any]) -> None:
    """A string literal spelled like a parameter, variable or resource would be read as that name."""
    deployment = template(parsed)
    literals = re.findall(r"'((?:[^'\\]|\\.)*)'", (ROOT / "infra" / "main.bicep").read_text(encoding="utf-8"))
    assert not [text for text in literals if deployment.is_name(text)]


def test_the_deploy_guide_sets_every_secret_the_template_references() -> None:
    guide = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    set_in_guide = set(re.findall(r"az keyvault secret set [^\n]*--name ([a-z0-9-]+)", guide))
    assert set(SECRET_VALUES) - {"token-encryption-old-keys"} <= set_in_guide
