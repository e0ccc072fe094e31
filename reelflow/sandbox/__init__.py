"""A local server that speaks the OpenAI Video API, strict where the real one is strict."""

from ._app import Sandbox
from ._config import Faults, SandboxConfig
from ._server import SANDBOX_API_KEY, RunningSandbox, run_sandbox, serve_sandbox

__all__ = ["SANDBOX_API_KEY", "Faults", "RunningSandbox", "Sandbox", "SandboxConfig", "run_sandbox", "serve_sandbox"]
