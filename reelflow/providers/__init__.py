"""reelflow/providers"""
