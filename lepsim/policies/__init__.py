"""lepsim.policies."""
