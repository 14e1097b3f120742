"""lepsim.metrics."""
