"""A faithful MWS Orders 2013-09-01 and SP-API server on loopback, for the demo, tests and benchmarks."""

from .config import (
    DEMO_CREDENTIALS,
    DEMO_MARKETPLACE_IDS,
    DEMO_SP_API_CREDENTIALS,
    Credentials,
    Faults,
    SimulatorConfig,
    SpApiCredentials,
)
from .server import MwsSimulator, serve_forever
from .stats import SimulatorStats

__all__ = [
    "DEMO_CREDENTIALS",
    "DEMO_MARKETPLACE_IDS",
    "DEMO_SP_API_CREDENTIALS",
    "Credentials",
    "Faults",
    "MwsSimulator",
    "SimulatorConfig",
    "SimulatorStats",
    "SpApiCredentials",
    "serve_forever",
]
