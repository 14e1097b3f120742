"""lepsim.engine."""
