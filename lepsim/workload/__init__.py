"""lepsim.workload."""
