"""The partitioning of the raw tables: one UTC day of LastUpdateDate per partition, and per account with an accounts file."""

from __future__ import annotations

import dagster as dg

from orders_pipeline.sources.accounts import Account, configured_accounts

FIRST_DAY = "2024-01-01"
ACCOUNT_DIMENSION = "account"
DAY_DIMENSION = "day"
ACCOUNT_TAG = f"dagster/partition/{ACCOUNT_DIMENSION}"
"""The run tag Dagster gives every run of one (account, day) partition; the run queue allows one run per value."""

daily_partitions = dg.DailyPartitionsDefinition(start_date=FIRST_DAY, timezone="UTC", end_offset=1)
"""Includes today (end_offset=1): today's partition is written as partial and completed by a later run."""

ACCOUNTS: dict[str, Account] = configured_accounts()
"""The seller accounts of $ORDERS_ACCOUNTS_FILE, read when the code location loads (reload it after editing the file);
empty without the file: one account from the single-account variables, partitioned by day alone, as always."""


def raw_partitions_for(accounts: dict[str, Account]) -> dg.PartitionsDefinition:
    """Daily partitions for one account; with accounts, the account x day grid the UI shows."""
    if not accounts:
        return daily_partitions
    return dg.MultiPartitionsDefinition(
        {ACCOUNT_DIMENSION: dg.StaticPartitionsDefinition(list(accounts)), DAY_DIMENSION: daily_partitions}
    )

