"""The `reelflow` command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

app = typer.Typer(help="Turn scene plans into finished videos.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)


@app.callback()
def main() -> None:
    """reelflow: scene plans to finished videos, through the OpenAI Video API or a compatible gateway."""


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one clear line on stderr and return the exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@app.command()
def sandbox(
    port: Annotated[int, typer.Option(help="Port on loopback (0: a free one).")] = 8765,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    profile: Annotated[str, typer.Option(help="Provider profile whose limits to enforce.")] = "sandbox",
    job_seconds: Annotated[float, typer.Option(help="Wall seconds each job takes.")] = 2.0,
    rpm: Annotated[int | None, typer.Option(help="Job-creating requests per minute.")] = None,
    max_concurrent: Annotated[int | None, typer.Option(help="Unfinished jobs at once.")] = None,
    faults: Annotated[str, typer.Option(help="Fault rates: 5xx=0.1,429=0.05,drop=0.02,truncate=0.02,slow=0.05")] = "",
    slow_seconds: Annotated[float, typer.Option(help="Delay of a `slow` fault.")] = 2.0,
    seed: Annotated[int, typer.Option(help="Seed of the fault draws.")] = 0,
    state_dir: Annotated[Path | None, typer.Option(help="Keep jobs and media here across restarts.")] = None,
    webhook_url: Annotated[str | None, typer.Option(help="POST signed video events here.")] = None,
    webhook_secret: Annotated[str | None, typer.Option(help="whsec_... secret that signs events.")] = None,
    api_key: Annotated[list[str] | None, typer.Option(help="Accept only this key (repeatable).")] = None,
) -> None:
    """Serve the OpenAI Video API locally, for demos, tests and benchmarks."""
    from .sandbox import Faults, SandboxConfig, serve_sandbox

    try:
        config = SandboxConfig(
            host=host, port=port, profile=profile, job_seconds=job_seconds, rpm=rpm,
            max_concurrent=max_concurrent, faults=Faults.parse(faults), slow_seconds=slow_seconds, seed=seed,
            state_dir=state_dir, webhook_url=webhook_url, webhook_secret=webhook_secret,
            api_keys=frozenset(api_key) if api_key else None,
        )
    except ValueError as e:
        raise fail(_one_line(e)) from None
    typer.echo(f"reelflow sandbox on http://{host}:{port}/v1 (profile {profile}); Ctrl-C stops it", err=True)
    serve_sandbox(config)


def _one_line(error: ValueError) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
    return str(error)


if __name__ == "__main__":
    app()
