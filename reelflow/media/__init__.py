"""reelflow/media"""
