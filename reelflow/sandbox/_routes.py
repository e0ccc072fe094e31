"""Where a dialect's requests go, as a pose declares them, for a proxy that breaks them (`reelflow.testing`)."""

from __future__ import annotations

from dataclasses import dataclass

Route = tuple[str, str]  # a method, and a pattern of the path (with its query) as the proxy sees it


@dataclass(frozen=True)
class Routes:
    """Where a dialect's requests go, as the proxy sees them: the create, the status check, the fetch of a
    finished job's result (`result`; None where the status answer is the result, recognised by `finished`, bytes
    that only the answer of a finished job contains), and the download of its video (None where the video comes
    inside the result)."""

    create: Route
    status: Route
    finished: bytes
    result: Route | None = None
    download: Route | None = None
