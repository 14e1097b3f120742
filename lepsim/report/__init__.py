"""lepsim.report."""
