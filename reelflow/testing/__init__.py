"""What a dialect must stand up to, importable by any dialect's tests (as fsspec's abstract tests are): a proxy
that breaks the wire between reelflow and a provider in one way at a time (`wire_faults`), and the fault matrix
(`CASES`) with what must hold under each of its cases."""

from ._matrix import CASES, FaultCase, Ledgered, Outcome, ledgered, sha256
from ._routes import Route, Routes
from ._wire import Action, Fault, Passage, WireFaults, wire_faults

__all__ = [
    "CASES",
    "Action",
    "Fault",
    "FaultCase",
    "Ledgered",
    "Outcome",
    "Passage",
    "Route",
    "Routes",
    "WireFaults",
    "ledgered",
    "sha256",
    "wire_faults",
]
