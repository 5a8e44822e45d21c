"""Settings are validated once; a bad one is reported in one line that names it."""

from __future__ import annotations

import pytest

from settings import ConflictPolicy, SettingsError, load_settings
from tests.conftest import TEST_TENANT_ID, app_settings_env

VALID = app_settings_env("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;")


def test_a_complete_environment_loads_with_defaults() -> None:
    settings = load_settings(VALID)
    assert settings.ms_authority == f"https://login.microsoftonline.com/{TEST_TENANT_ID}"
    assert settings.allowed_tenant_ids == {TEST_TENANT_ID}
    assert settings.admin_group_ids == frozenset()
    assert settings.graph_base_url == "https://graph.microsoft.com/v1.0"
    assert settings.window_past_days == 60 and settings.window_future_days == 60
    assert settings.conflict_policy is ConflictPolicy.LATEST
    assert settings.max_request_body_bytes == 1024 * 1024
    assert settings.storage.connection_string == VALID["AzureWebJobsStorage"]


def test_secrets_are_not_in_the_repr() -> None:
    text = repr(load_settings(VALID))
    for name in ("MS_CLIENT_SECRET", "SYNCRO_API_TOKEN", "SYNCRO_WEBHOOK_SECRET", "TOKEN_ENCRYPTION_KEY"):
        assert VALID[name] not in text


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("MS_CLIENT_ID", "", "is missing"),
        ("SYNCRO_BASE_URL", "ftp://x", "is not a valid https base URL"),
        ("SYNCRO_BASE_URL", "http://syncro.example.com/api/v1", "is not a valid https base URL"),
        ("PUBLIC_BASE_URL", "https://x/?q=1", "is not a valid https base URL"),
        ("TOKEN_ENCRYPTION_KEY", "c2hvcnQ=", "decodes to 5 bytes, not 32"),
        ("TOKEN_ENCRYPTION_KEY", "!!!!", "is not base64"),
        ("SYNC_WINDOW_PAST_DAYS", "sixty", "is not a whole number"),
        ("SYNC_WINDOW_FUTURE_DAYS", "0", "outside 1..730"),
        ("CONFLICT_POLICY", "newest", "is 'newest'"),
        ("CA_BUNDLE", "/nonexistent/ca.pem", "which is not a file"),
        ("TOKEN_ENCRYPTION_KEY_ID", "a b", "is not 1-16 letters"),
        ("TOKEN_ENCRYPTION_OLD_KEYS", "0:c2hvcnQ=", "decodes to 5 bytes"),
        ("TOKEN_ENCRYPTION_OLD_KEYS", "no-key-id", "is not id:key"),
        ("ALLOW_PERSONAL_ACCOUNTS", "true", "is no longer supported"),
        ("ADMIN_EMAILS", "ann@msp.example", "is no longer read: admins are users given the app role SyncAdmin"),
        ("ADMIN_GROUP_IDS", "admins", "'admins', which is not an id (a GUID)"),
        ("ALLOWED_TENANT_IDS", "contoso.com", "'contoso.com', which is not an id (a GUID)"),
        ("MS_AUTHORITY", "", "is missing"),
        ("TABLE_PREFIX", "1bad", "is '1bad'"),
        ("AzureWebJobsStorage", "not a connection string", "is not a storage connection string"),
        ("MS_CLIENT_SECRET", "@Microsoft.KeyVault(SecretUri=https://kv/secrets/x/)", "Key Vault reference"),
        ("TOKEN_ENCRYPTION_OLD_KEYS", "@Microsoft.KeyVault(VaultName=kv;SecretName=old)", "could not resolve"),
        ("IMPORT_EXISTING_DAYS", "0", "outside 1..730"),
        ("SYNC_RECURRING_EVENTS", "sometimes", "is 'sometimes'"),
        ("SYNCRO_APPOINTMENT_TYPE_ID", "-4", "not a Syncro id"),
        ("SYNCRO_CUSTOMER_ID", "acme", "not a Syncro id"),
        ("SYNCRO_WEB_URL", "ftp://acme", "is not a valid https base URL"),
        ("SYNCRO_POLL_REQUESTS_PER_MINUTE", "500", "outside 1..180"),
        ("SYNCRO_REQUESTS_PER_MINUTE", "181", "outside 10..180"),
        ("SYNCRO_REQUESTS_PER_MINUTE", "lots", "is not a whole number"),
        ("RECONCILE_SCHEDULE", "every 15 minutes", "not six"),
        ("SUBSCRIPTION_LIFETIME_MINUTES", "20000", "outside 45..10080"),
    ],
)
def test_a_bad_setting_is_named_in_one_line(name: str, value: str, says: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings({**VALID, name: value})
    message = str(raised.value)
    assert raised.value.name == name
    assert message.startswith(f"setting {name} ")
    assert says in message
    assert "a valid value looks like" in message
    assert "\n" not in message


def test_identity_based_storage_from_the_account_name() -> None:
    env = {k: v for k, v in VALID.items() if k != "AzureWebJobsStorage"}
    settings = load_settings({**env, "AzureWebJobsStorage__accountName": "syncsync01"})
    assert settings.storage.uses_identity
    assert settings.storage.table_endpoint == "https://syncsync01.table.core.windows.net"
    assert settings.storage.queue_endpoint == "https://syncsync01.queue.core.windows.net"


def test_no_storage_at_all_is_named() -> None:
    env = {k: v for k, v in VALID.items() if k != "AzureWebJobsStorage"}
    with pytest.raises(SettingsError, match="setting AzureWebJobsStorage is missing"):
        load_settings(env)


def test_loopback_urls_may_be_plain_http() -> None:
    settings = load_settings({**VALID, "SYNCRO_BASE_URL": "http://127.0.0.1:8443/api/v1/"})
    assert settings.syncro_base_url == "http://127.0.0.1:8443/api/v1"


def test_old_keys_and_admin_groups() -> None:
    old_key = VALID["TOKEN_ENCRYPTION_KEY"]
    group = "0F0E0D0C-0000-4000-8000-000000000001"
    settings = load_settings(
        {
            **VALID,
            "TOKEN_ENCRYPTION_KEY_ID": "2",
            "TOKEN_ENCRYPTION_OLD_KEYS": f"1:{old_key}",
            "ADMIN_GROUP_IDS": f" {group}; ",
            "ALLOW_PERSONAL_ACCOUNTS": "false",  # the old default is still accepted: it asks for nothing
        }
    )
    assert settings.token_encryption_key_id == "2"
    assert settings.token_encryption_old_keys == {"1": old_key.encode()}
    assert settings.admin_group_ids == {group.lower()}
    with pytest.raises(SettingsError, match="repeats the key id '2'"):
        load_settings({**VALID, "TOKEN_ENCRYPTION_KEY_ID": "2", "TOKEN_ENCRYPTION_OLD_KEYS": f"2:{old_key}"})
