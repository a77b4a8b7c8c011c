"""$ORDERS_ACCOUNTS_FILE: YAML or TOML, names variables and never secrets; every mistake is one line naming file, account
and fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from orders_pipeline.sources.accounts import AccountsFileError, configured_accounts, load_accounts

REPO = Path(__file__).resolve().parents[1]
GOOD_YAML = """
accounts:
  - name: us-brand
    source: sp-api
    marketplaces: [ATVPDKIKX0DER, A2EUQ1WTGCTBG2]
    endpoint: https://sellingpartnerapi-na.amazon.com
    secrets:
      refresh_token: US_BRAND_REFRESH
  - name: eu_shop
    source: mws
"""
GOOD_TOML = """
[[accounts]]
name = "us-brand"
source = "sp-api"
marketplaces = ["ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"]
endpoint = "https://sellingpartnerapi-na.amazon.com"
secrets = { refresh_token = "US_BRAND_REFRESH" }

[[accounts]]
name = "eu_shop"
source = "mws"
"""


def write(tmp_path: Path, text: str, suffix: str = ".yaml") -> Path:
    path = tmp_path / f"accounts{suffix}"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "suffix"), [(GOOD_YAML, ".yaml"), (GOOD_TOML, ".toml")], ids=["yaml", "toml"])
def test_an_accounts_file_names_the_variables_and_fills_in_each_sources_defaults(tmp_path, text, suffix):
    accounts = load_accounts(write(tmp_path, text, suffix))

    assert list(accounts) == ["us-brand", "eu_shop"]
    us, eu = accounts["us-brand"], accounts["eu_shop"]
    assert (us.source, us.marketplace_ids, us.endpoint) == ("sp-api", ("ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"), "https://sellingpartnerapi-na.amazon.com")
    assert dict(us.secret_variables) == {"app_id": "LWA_APP_ID", "client_secret": "LWA_CLIENT_SECRET", "refresh_token": "US_BRAND_REFRESH"}
    assert dict(eu.secret_variables) == {"access_key_id": "MWS_ACCESS_KEY_ID", "secret_key": "MWS_SECRET_KEY",
                                         "seller_id": "EU_SHOP_MWS_SELLER_ID", "auth_token": "EU_SHOP_MWS_AUTH_TOKEN"}
    assert eu.endpoint is None and us.simulator_seed != eu.simulator_seed


ACCOUNT = "accounts:\n  - name: shop\n    source: mws\n"


@pytest.mark.parametrize(
    ("text", "phrases"),
    [
        (ACCOUNT + "    region: eu\n", ["'shop'", "unknown key(s) region", "allowed:"]),
        ("accounts:\n  - name: Shop One\n    source: mws\n", ["account #1", "'Shop One'", "lower-case"]),
        (ACCOUNT + ACCOUNT.removeprefix("accounts:\n"), ["'shop' is listed twice", "its own name"]),
        ("accounts:\n  - name: shop\n    source: amazon\n", ["'shop'", "source 'amazon'", "mws or sp-api"]),
        (ACCOUNT + "    secrets:\n      secret_key: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
         ["'shop'", "secrets.secret_key must be the NAME of an environment variable", "never the secret itself"]),
        (ACCOUNT + "    secrets:\n      secret_key: my password\n", ["secrets.secret_key must be the NAME"]),
        (ACCOUNT + "    secret_key: MWS_SECRET_KEY\n", ["key 'secret_key' looks like a secret", "name that variable under `secrets`"]),
        (ACCOUNT + "    password: hunter2\n", ["key 'password' looks like a secret"]),
        (ACCOUNT + "    marketplaces: [AKIAIOSFODNN7EXAMPLE]\n", ["value of 'marketplaces' looks like a credential"]),
        (ACCOUNT + "    endpoint: https://user:pass@mws.amazonservices.com\n", ["endpoint must be an http(s) URL without user:password@"]),
        (ACCOUNT + "    secrets:\n      refresh_token: SHOP_TOKEN\n", ["unknown secret(s) refresh_token for source mws", "allowed: access_key_id"]),
        (ACCOUNT + "    endpoint: https://mws.amazonservices.com\n", ["an endpoint needs marketplaces"]),
        ("accounts: []\n", ["non-empty list `accounts`"]),
        ("shops:\n  - name: shop\n", ["non-empty list `accounts`"]),
        ("accounts: [\n", ["not valid YAML"]),
        (ACCOUNT + "    secrets:\n      access_key_id: AKIAIOSFODNN7EXAMPLE\n", ["secrets.access_key_id must be the NAME"]),
        (ACCOUNT + "    secrets:\n      seller_id: A2EUQ1WTGCTBG2\n", ["secrets.seller_id must be the NAME"]),
        ("accounts:\n  - name: default\n    source: mws\n", ["'default' is taken", "its own name"]),
    ],
    ids=["unknown-key", "bad-name", "duplicate", "unknown-source", "secret-value-under-secrets", "words-under-secrets",
         "secret-key-outside-secrets", "password", "credential-shaped-value", "password-in-url", "secret-of-other-source",
         "endpoint-without-marketplaces", "empty", "no-accounts-list", "broken-yaml", "key-id-under-secrets",
         "seller-id-under-secrets", "reserved-name"],
)
def test_a_bad_accounts_file_fails_in_one_line_naming_file_account_and_fix(tmp_path, text, phrases):
    path = write(tmp_path, text)
    with pytest.raises(AccountsFileError) as raised:
        load_accounts(path)
    message = str(raised.value)
    assert "\n" not in message and message.startswith(str(path)), message
    assert all(phrase in message for phrase in phrases), message
    assert "wJalrXUtnFEMI" not in message and "hunter2" not in message and "AKIAIOSFODNN7EXAMPLE" not in message


def test_without_the_variable_there_are_no_accounts_and_a_missing_file_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("ORDERS_ACCOUNTS_FILE", raising=False)
    assert configured_accounts() == {}
    monkeypatch.setenv("ORDERS_ACCOUNTS_FILE", str(tmp_path / "nope.yaml"))
    with pytest.raises(AccountsFileError, match=r"ORDERS_ACCOUNTS_FILE=.*nope.yaml: cannot read it"):
        configured_accounts()


def test_the_code_location_validates_with_accounts_and_with_a_bad_file_says_why(tmp_path):
    """`dagster definitions validate`: the raw assets on the account x day grid, analytics downstream unpartitioned."""
    env = {key: value for key, value in __import__("os").environ.items() if not key.startswith(("ORDERS_", "DAGSTER_HOME"))}
    command = [str(Path(sys.executable).with_name("dagster")), "definitions", "validate", "-w", "workspace.yaml"]
    good = subprocess.run(command, cwd=REPO, env={**env, "ORDERS_ACCOUNTS_FILE": str(write(tmp_path, GOOD_YAML))},
                          capture_output=True, text=True, timeout=240)
    assert good.returncode == 0, good.stderr[-3000:]
    bad = subprocess.run(command, cwd=REPO, env={**env, "ORDERS_ACCOUNTS_FILE": str(write(tmp_path, ACCOUNT + "    token: x\n", ".yml"))},
                         capture_output=True, text=True, timeout=240)
    assert bad.returncode != 0 and "key 'token' looks like a secret" in bad.stdout + bad.stderr
