"""A local server that poses as a provider's video API (each dialect the registry names a pose for: OpenAI's,
OpenRouter's, Google's, fal's), strict where the real one is strict."""

from ..sandbox_process import SANDBOX_API_KEY
from ._app import Sandbox
from ._config import Faults, SandboxConfig
from ._media import FPS, Recipe, Segment, render
from ._problems import ApiProblem
from ._routes import Route, Routes
from ._server import RunningSandbox, run_sandbox, serve_sandbox
from ._state import Job, now

__all__ = [
    "FPS",
    "SANDBOX_API_KEY",
    "ApiProblem",
    "Faults",
    "Job",
    "Recipe",
    "Route",
    "Routes",
    "RunningSandbox",
    "Sandbox",
    "SandboxConfig",
    "Segment",
    "now",
    "render",
    "run_sandbox",
    "serve_sandbox"
]
