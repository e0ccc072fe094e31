"""reelflow's Prefect tasks: each one step of rendering a scene, each retried on transient failures only."""
