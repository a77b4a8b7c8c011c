"""Several seller accounts from the file $ORDERS_ACCOUNTS_FILE (YAML or TOML): what each fetches, and the NAMES of the
environment variables holding its secrets. The file never holds a secret; one that looks like it does is refused."""

from __future__ import annotations

import os
import re
import tomllib
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

import yaml

ACCOUNTS_FILE_ENV = "ORDERS_ACCOUNTS_FILE"
DEFAULT_ACCOUNT = "default"
ACCOUNT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
VARIABLE_NAME = re.compile(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$")
"""An environment variable's name as the file must give it: upper case with at least one `_` (every default has one),
so a pasted key id or seller id (`AKIA...`, `A2EUQ1...`) is refused instead of being echoed as a variable name."""
MARKETPLACE_ID = re.compile(r"^[A-Z0-9]{5,20}$")
SOURCES = ("mws", "sp-api")
ACCOUNT_KEYS = {"name", "source", "marketplaces", "endpoint", "token_url", "secrets"}

# Secret -> default variable. `{ACCOUNT}` is the account's name upper-cased, '-' as '_'. The developer app's keys are
# shared by every seller who authorized it (as at Amazon); what identifies one seller is named per account.
DEFAULT_SECRETS: Mapping[str, Mapping[str, str]] = {
    "mws": {
        "access_key_id": "MWS_ACCESS_KEY_ID",
        "secret_key": "MWS_SECRET_KEY",
        "seller_id": "{ACCOUNT}_MWS_SELLER_ID",
        "auth_token": "{ACCOUNT}_MWS_AUTH_TOKEN",
    },
    "sp-api": {
        "app_id": "LWA_APP_ID",
        "client_secret": "LWA_CLIENT_SECRET",
        "refresh_token": "{ACCOUNT}_SP_API_REFRESH_TOKEN",
    },
}
# Shapes of credential values (AWS/MWS keys, LWA ids, secrets and refresh tokens, or a long random-looking string).
CREDENTIAL_SHAPES = re.compile(
    r"^(AKIA|ASIA)[A-Z0-9]{12,}$|^amzn1\.(oa2-cs|application-oa2-client)\.|^Atzr\||^[A-Za-z0-9+/=_\-|.]{32,}$"
)


class AccountsFileError(ValueError):
    """The accounts file cannot be used; str() is one line naming the file, the account and the fix."""


@dataclass(frozen=True)
class Account:
    """One seller account: its API, marketplaces, endpoint (None: the embedded simulator) and secret variable names."""

    name: str
    source: str
    marketplace_ids: tuple[str, ...] = ()
    endpoint: str | None = None
    token_url: str | None = None
    secret_variables: Mapping[str, str] = field(default_factory=dict)

    @property
    def simulator_seed(self) -> int:
        """The embedded simulator's seed for this account: each simulated account has its own orders."""
        return 7 if self.name == DEFAULT_ACCOUNT else zlib.crc32(self.name.encode())


def accounts_file() -> Path | None:
    """The accounts file $ORDERS_ACCOUNTS_FILE names, or None when it is unset (one account, from the variables)."""
    configured = os.environ.get(ACCOUNTS_FILE_ENV, "").strip()
    return Path(configured) if configured else None


def configured_accounts() -> dict[str, Account]:
    """The accounts of $ORDERS_ACCOUNTS_FILE by name, in file order; empty without the file."""
    path = accounts_file()
    return {} if path is None else load_accounts(path)


def load_accounts(path: Path) -> dict[str, Account]:
    """Read and check the accounts file (`.toml` as TOML, anything else as YAML)."""
    try:
        text = path.read_text()
    except OSError as error:
        raise AccountsFileError(f"{ACCOUNTS_FILE_ENV}={path}: cannot read it ({error.strerror}); fix the path or unset it") from None
    try:
        content = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as error:
        first_line = str(error).strip().splitlines()[0]
        raise AccountsFileError(f"{path}: not valid {'TOML' if path.suffix == '.toml' else 'YAML'} ({first_line})") from None
    entries = content.get("accounts") if isinstance(content, dict) else None
    if not isinstance(entries, list) or not entries or set(content) != {"accounts"}:
        raise AccountsFileError(f"{path}: expected only a non-empty list `accounts` (see README, Accounts)")
    accounts: dict[str, Account] = {}
    for number, entry in enumerate(entries, start=1):
        account = _account(path, number, entry)
        if account.name in accounts:
            raise AccountsFileError(f"{path}: account {account.name!r} is listed twice; give each account its own name")
        accounts[account.name] = account
    return accounts


def _account(path: Path, number: int, entry: object) -> Account:
    """One entry of the file, checked."""
    where = f"{path}: account #{number}"
    if not isinstance(entry, dict):
        raise AccountsFileError(f"{where} is not a table of keys (name, source, marketplaces, ...)")
    name = entry.get("name")
    if not isinstance(name, str) or not ACCOUNT_NAME.match(name):
        raise AccountsFileError(f"{where}: name {name!r} must match {ACCOUNT_NAME.pattern} (lower-case letters, digits, - and _)")
    if name == DEFAULT_ACCOUNT:
        raise AccountsFileError(
            f"{where}: the name {DEFAULT_ACCOUNT!r} is taken by the data written without an accounts file (the dt= "
            "folders); give the account its own name (README, Accounts: moving one seller's data under its name)"
        )
    where = f"{path}: account {name!r}"
    _refuse_secret_values(where, entry)
    unknown = sorted(set(entry) - ACCOUNT_KEYS)
    if unknown:
        raise AccountsFileError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(ACCOUNT_KEYS))}")
    source = entry.get("source")
    if source not in SOURCES:
        raise AccountsFileError(f"{where}: source {source!r} -> set it to mws or sp-api")
    marketplaces = entry.get("marketplaces", [])
    if isinstance(marketplaces, str):
        marketplaces = [part.strip() for part in marketplaces.split(",") if part.strip()]
    if not isinstance(marketplaces, list) or not all(isinstance(m, str) and MARKETPLACE_ID.match(m) for m in marketplaces):
        raise AccountsFileError(f"{where}: marketplaces must be a list of marketplace ids such as ATVPDKIKX0DER")
    endpoint, token_url = (_url(where, entry, key) for key in ("endpoint", "token_url"))
    if endpoint and not marketplaces:
        raise AccountsFileError(f"{where}: an endpoint needs marketplaces (the ids this seller sells in)")
    if token_url and source != "sp-api":
        raise AccountsFileError(f"{where}: token_url is for source sp-api (Login with Amazon); remove it")
    return Account(name, source, tuple(marketplaces), endpoint, token_url, _secret_variables(where, name, source, entry))


def _url(where: str, entry: dict, key: str) -> str | None:
    """An optional http(s) URL without user info (a password in a URL is a secret in the file)."""
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not re.match(r"^https?://[^/@\s]+(/\S*)?$", value):
        raise AccountsFileError(f"{where}: {key} must be an http(s) URL without user:password@ (e.g. https://sellingpartnerapi-eu.amazon.com)")
    return value.rstrip("/")


def _secret_variables(where: str, name: str, source: str, entry: dict) -> Mapping[str, str]:
    """Each secret's variable: the one the entry names under `secrets`, else the source's default for this account."""
    named = entry.get("secrets", {})
    defaults = DEFAULT_SECRETS[source]
    if not isinstance(named, dict):
        raise AccountsFileError(f"{where}: secrets must map a secret ({', '.join(defaults)}) to a variable name")
    unknown = sorted(set(named) - set(defaults))
    if unknown:
        raise AccountsFileError(f"{where}: unknown secret(s) {', '.join(unknown)} for source {source}; allowed: {', '.join(defaults)}")
    for secret, variable in named.items():
        if not isinstance(variable, str) or not VARIABLE_NAME.match(variable) or CREDENTIAL_SHAPES.match(variable):
            raise AccountsFileError(
                f"{where}: secrets.{secret} must be the NAME of an environment variable (like {_default(defaults[secret], name)}), "
                "never the secret itself: put the value in that variable"
            )
    return MappingProxyType({secret: named.get(secret) or _default(template, name) for secret, template in defaults.items()})


def _default(template: str, account: str) -> str:
    """A default variable name for `account` (e.g. eu-brand -> EU_BRAND_SP_API_REFRESH_TOKEN)."""
    return template.replace("{ACCOUNT}", re.sub(r"[^A-Z0-9]", "_", account.upper()))


def _refuse_secret_values(where: str, entry: dict) -> None:
    """Refuse a key that names a secret outside `secrets`, and any value shaped like a credential."""
    for key, value in entry.items():
        if key not in ("secrets", "token_url") and re.search(r"secret|password|token|key|credential", str(key), re.I):
            raise AccountsFileError(
                f"{where}: key {key!r} looks like a secret; the file never holds secrets: export it in a variable "
                f"and name that variable under `secrets`"
            )
        for text in _strings(value) if key not in ("name", "secrets") else []:  # both checked on their own
            if CREDENTIAL_SHAPES.match(text) and not text.startswith(("http://", "https://")):
                raise AccountsFileError(
                    f"{where}: the value of {key!r} looks like a credential; the file never holds secrets: export it "
                    "in a variable and name that variable under `secrets`"
                )


def _strings(value: object) -> list[str]:
    """Every string inside a value (lists and tables included)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return []
