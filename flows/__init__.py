"""reelflow's Prefect flows: render a plan, render one scene, prepare a batch of images."""
