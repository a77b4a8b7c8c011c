"""What one raw run covers: an account (with an accounts file) and its consecutive days, from the run's partition keys."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import dagster as dg

from orders_pipeline.defs.partitions import ACCOUNT_DIMENSION, DAY_DIMENSION
from orders_pipeline.sources.accounts import Account


@dataclass(frozen=True)
class RunScope:
    """The account a run fetches for (None: the single account of the variables) and its days, oldest first."""

    account: Account | None
    days: list[date]

    @property
    def folder(self) -> str | None:
        """The `account=NAME` level of the layout; None without accounts (the layout of one account)."""
        return self.account.name if self.account else None

    @property
    def span(self) -> str:
        """The partition or range as failures name it: `2024-03-03`, `2024-03-01...2024-03-05`, `eu 2024-03-03`."""
        days = str(self.days[0]) if len(self.days) == 1 else f"{self.days[0]}...{self.days[-1]}"
        return f"{self.folder} {days}" if self.folder else days


def run_scope(context: dg.AssetExecutionContext, accounts: dict[str, Account]) -> RunScope:
    """The run's account (of `accounts`) and days; a run over several accounts fails in one line (each account is its
    own queue)."""
    keys = context.partition_keys
    if not accounts:
        return RunScope(None, [date.fromisoformat(key) for key in keys])
    dimensions = [key.keys_by_dimension for key in keys]
    names = sorted({dimension[ACCOUNT_DIMENSION] for dimension in dimensions})
    if len(names) > 1:
        raise dg.Failure(
            description=f"A raw run covers one account, this one {', '.join(names)}: launch one run per account "
            "(each account's runs take turns on its own API budget)",
            allow_retries=False,
        )
    days = sorted({date.fromisoformat(dimension[DAY_DIMENSION]) for dimension in dimensions})
    return RunScope(accounts[names[0]], days)
