import pytest

from crmsync.errors import SettingsError
from crmsync.settings import Settings


@pytest.mark.parametrize(
    "env, variable, words",
    [
        ({"CRM": "pipedrive"}, "CRM", "set it to salesforce or hubspot"),
        ({"WEBHOOK_AUTH": "basic"}, "WEBHOOK_AUTH", "none"),
        ({"WEBHOOK_AUTH": "none", "WEBHOOK_TOKENS": "a"}, "WEBHOOK_AUTH", "unset one of them"),
        ({"DEFAULT_REGION": "XX"}, "DEFAULT_REGION", "ISO 3166"),
        ({"DEDUPE_TTL": "soon"}, "DEDUPE_TTL", "not a whole number"),
        ({"DEDUPE_TTL": "5"}, "DEDUPE_TTL", "at least 60"),
        ({"HUBSPOT_RATE_LIMIT": "lots"}, "HUBSPOT_RATE_LIMIT", "100/10s"),
        ({"SALESFORCE_DAILY_BUDGET": "0"}, "SALESFORCE_DAILY_BUDGET", "at least 1"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL", "DEBUG"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL", "redis://"),
        ({"REDIS_SSL_CERT_REQS": "maybe"}, "REDIS_SSL_CERT_REQS", "none"),
        ({"SYNC_BATCH_MAX": "0"}, "SYNC_BATCH_MAX", "at least 1"),
        ({"SYNC_BATCH_MAX": "many"}, "SYNC_BATCH_MAX", "not a whole number"),
        ({"SYNC_BATCH_WINDOW": "soon"}, "SYNC_BATCH_WINDOW", "0.25"),
        ({"SYNC_BATCH_WINDOW": "30"}, "SYNC_BATCH_WINDOW", "between 0 and 5"),
    ],
)
def test_bad_settings_name_the_variable(env, variable, words):
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env)
    assert info.value.variable == variable
    assert str(info.value).startswith(variable + " ")
    assert words in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "env, variable",
    [
        ({"CRM": "hubspot"}, "HUBSPOT_ACCESS_TOKEN"),
        ({"CRM": "salesforce"}, "SALESFORCE_ACCESS_TOKEN"),
        ({"CRM": "salesforce", "SALESFORCE_ACCESS_TOKEN": "t"}, "SALESFORCE_INSTANCE_URL"),
        ({"CRM": "salesforce", "SALESFORCE_CONSUMER_KEY": "k", "SALESFORCE_CONSUMER_SECRET": "s"}, "SALESFORCE_DOMAIN"),
        ({}, "CRM"),
    ],
)
def test_worker_needs_crm_credentials(env, variable):
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env).require_crm_credentials()
    assert info.value.variable == variable


def test_defaults_and_secrets_stay_out_of_repr():
    settings = Settings.from_env({"WEBHOOK_TOKENS": " a , b ,", "HUBSPOT_ACCESS_TOKEN": "pat-secret", "CRM": "HubSpot"})
    assert settings.webhook_tokens == ("a", "b")
    assert settings.crm == "hubspot"
    assert settings.dedupe_ttl == 7 * 24 * 3600
    assert settings.hubspot.rate_limit == "100/10s" and settings.hubspot.search_rate_limit == "4/s"
    assert str(settings.mapping_path) == "mappings/hubspot.yaml"
    assert "pat-secret" not in repr(settings) and "'a'" not in repr(settings)


@pytest.mark.parametrize(
    "env, mode",
    [
        ({"SALESFORCE_ACCESS_TOKEN": "t"}, "access_token"),
        ({"SALESFORCE_USERNAME": "u", "SALESFORCE_PASSWORD": "p"}, "password"),
        ({"SALESFORCE_USERNAME": "u", "SALESFORCE_CONSUMER_KEY": "k", "SALESFORCE_PRIVATE_KEY": "pem"}, "jwt"),
        ({"SALESFORCE_CONSUMER_KEY": "k", "SALESFORCE_CONSUMER_SECRET": "s"}, "client_credentials"),
    ],
)
def test_salesforce_auth_modes(env, mode):
    assert Settings.from_env(env).salesforce.auth_mode == mode


def test_batch_settings():
    assert Settings.from_env({}).batch.max is None  # the CRM's maximum
    assert Settings.from_env({}).batch.window == 0.25
    chosen = Settings.from_env({"SYNC_BATCH_MAX": "20", "SYNC_BATCH_WINDOW": "0"}).batch
    assert (chosen.max, chosen.window) == (20, 0.0)
