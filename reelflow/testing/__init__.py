"""What a dialect must stand up to, importable by any dialect's tests as fsspec's abstract tests are (it needs
pytest): the dialect contract (`DialectContract`) and the fault matrix (`FaultMatrix`, its `CASES`), run against
the sandbox posing as the dialect's provider, and the proxy that breaks the wire between reelflow and a provider
in one way at a time (`wire_faults`)."""

from ..sandbox import Route, Routes
from ._contract import DialectContract, FaultMatrix, clip, through_gateway
from ._matrix import CASES, FaultCase, Ledgered, Outcome, ledgered, sha256
from ._wire import Action, Fault, Passage, WireFaults, wire_faults

__all__ = [
    "CASES",
    "Action",
    "DialectContract",
    "Fault",
    "FaultCase",
    "FaultMatrix",
    "Ledgered",
    "Outcome",
    "Passage",
    "Route",
    "Routes",
    "WireFaults",
    "clip",
    "ledgered",
    "sha256",
    "through_gateway",
    "wire_faults",
]
