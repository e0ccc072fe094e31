"""reelflow's deployments as code: a schedule, a form for the Prefect UI, image preparation, and the
per-scene deployment that spreads one plan over several workers. `reelflow serve` serves them all."""

from ._deployments import DEPLOYMENTS, build_deployments, deploy_to_pool, serve_deployments

__all__ = ["DEPLOYMENTS", "build_deployments", "deploy_to_pool", "serve_deployments"]
