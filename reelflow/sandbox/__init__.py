"""A local server that poses as a provider's video API (OpenAI's, OpenRouter's), strict where the real one is strict."""

from ..sandbox_process import POSES, SANDBOX_API_KEY
from ._app import Sandbox
from ._config import Faults, SandboxConfig
from ._media import FPS, Recipe, Segment, render
from ._server import RunningSandbox, run_sandbox, serve_sandbox


def poses() -> tuple[str, ...]:
    """The dialects the sandbox can pose as."""
    return POSES


__all__ = [
    "FPS",
    "SANDBOX_API_KEY",
    "Faults",
    "Recipe",
    "RunningSandbox",
    "Sandbox",
    "SandboxConfig",
    "Segment",
    "poses",
    "render",
    "run_sandbox",
    "serve_sandbox"
]
