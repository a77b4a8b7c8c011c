"""The daily partitioning of the raw tables: one UTC day of LastUpdateDate per partition."""

from __future__ import annotations

import dagster as dg

FIRST_DAY = "2024-01-01"

daily_partitions = dg.DailyPartitionsDefinition(start_date=FIRST_DAY, timezone="UTC", end_offset=1)
"""Includes today (end_offset=1): today's partition is written as partial and completed by a later run."""
