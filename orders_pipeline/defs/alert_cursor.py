"""What mart_alerts_sensor remembers between ticks: delivered flags still flagged, and the batch in flight (no Dagster here)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace


@dataclass
class AlertCursor:
    """Mart versions last evaluated, flags delivered and still flagged then, the batch a run is delivering, failures in a row.

    Bounded by what the marts flag now (see `alerts.alertable`), never by history.
    """

    seen: dict[str, int] = field(default_factory=dict)
    reported: dict[str, list[str]] = field(default_factory=dict)
    pending: dict[str, list[str]] = field(default_factory=dict)
    run_key: str = ""
    failures: int = 0

    @classmethod
    def parse(cls, text: str | None) -> AlertCursor:
        """The cursor from its stored text (empty when the sensor has never run)."""
        return cls(**json.loads(text)) if text else cls()

    def dump(self) -> str:
        """The cursor as the text the sensor stores."""
        return json.dumps(asdict(self), sort_keys=True)

    def settled(self, delivered: bool) -> AlertCursor:
        """The batch in flight counted as reported if its run succeeded; otherwise left to the next request."""
        if not delivered:
            return replace(self, pending={}, run_key="", failures=self.failures + 1)
        reported = {mart: sorted({*self.reported.get(mart, []), *keys}) for mart, keys in self.pending.items()}
        return replace(self, reported={**self.reported, **reported}, pending={}, run_key="", failures=0)

    def undelivered(self, flagged: dict[str, set[str]]) -> dict[str, list[str]]:
        """The flags not delivered yet."""
        return {mart: sorted(keys - set(self.reported.get(mart, []))) for mart, keys in flagged.items()}

    def evaluated(self, seen: dict[str, int], flagged: dict[str, set[str]]) -> AlertCursor:
        """After looking at the marts at `seen`: forget delivered flags they no longer flag (so a flag that returns is new)."""
        reported = {mart: sorted(keys & set(self.reported.get(mart, []))) for mart, keys in flagged.items()}
        return replace(self, seen=seen, reported=reported)

    def next_run_key(self, seen: dict[str, int]) -> str:
        """A run key new for each mart version and each retry after a failed delivery."""
        retry = f"-retry{self.failures}" if self.failures else ""
        return "alerts-" + "-".join(str(storage_id) for storage_id in seen.values()) + retry

    def requested(self, run_key: str, batch: dict[str, list[str]]) -> AlertCursor:
        """`batch` handed to the run `run_key`; reported only once that run succeeds."""
        return replace(self, pending=batch, run_key=run_key)

    def idle(self) -> AlertCursor:
        """Nothing left to deliver: no failure to retry."""
        return replace(self, failures=0)
