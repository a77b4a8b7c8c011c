"""A faithful MWS Orders 2013-09-01 server on loopback, for the demo, tests and benchmarks."""

from .config import DEMO_CREDENTIALS, DEMO_MARKETPLACE_IDS, Credentials, Faults, SimulatorConfig
from .server import MwsSimulator, serve_forever
from .stats import SimulatorStats

__all__ = [
    "DEMO_CREDENTIALS",
    "DEMO_MARKETPLACE_IDS",
    "Credentials",
    "Faults",
    "MwsSimulator",
    "SimulatorConfig",
    "SimulatorStats",
    "serve_forever",
]
