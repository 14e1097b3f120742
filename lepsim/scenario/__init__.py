"""lepsim.scenario."""
