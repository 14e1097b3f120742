"""lepsim.experiments."""
