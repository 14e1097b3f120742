"""The one tidy schema of measured costs (the profile store's columns), SI units.

One row = one measured quantity at one key point.  Columns that do not apply are null.
Every adapter (Gavel, Pollux, Vidur, Splitwise, DistServe) and ``lepsim profile`` write
rows of exactly these columns; docs/costs.md explains each.
"""
from __future__ import annotations

# (column, pandas dtype, meaning)
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("device", "string", "canonical GPU name from the hardware catalog (e.g. 'V100'), or 'cpu:<model>'"),
    ("model", "string", "workload model name (e.g. 'resnet50', 'llama-2-7b'); '' for collectives"),
    ("phase", "string", "train_iteration | forward | backward | optimizer | inference | prefill | decode | operator | kernel | collective | sync"),
    ("operator", "string", "operator, kernel or collective name; '' for whole-iteration rows"),
    ("batch_size", "Int64", "per-GPU batch size (samples)"),
    ("num_tokens", "Int64", "tokens in the batch (LLM operator and prefill rows)"),
    ("context_tokens", "Int64", "context length (decode rows)"),
    ("size_bytes", "float64", "message size of a collective (bytes)"),
    ("num_gpus", "Int64", "GPUs the measurement used"),
    ("placement", "string", "GPUs per node, digits as in Pollux: '4' = 1 node x 4, '22' = 2 nodes x 2; '' if n/a"),
    ("tensor_parallel", "Int64", "tensor-parallel degree"),
    ("co_located_with", "string", "other job type space-sharing the GPUs (Gavel pairs); '' if alone"),
    ("time_s", "float64", "the central time estimate in seconds (mean unless only median known)"),
    ("time_median_s", "float64", "median time (s)"),
    ("time_std_s", "float64", "standard deviation (s)"),
    ("time_min_s", "float64", "minimum (s)"),
    ("time_max_s", "float64", "maximum (s)"),
    ("count", "Int64", "calls or repetitions behind the statistics"),
    ("cpu_time_s", "float64", "host CPU time (s), profiler rows"),
    ("flops", "float64", "floating-point operations of the measured work"),
    ("bytes_moved", "float64", "bytes read+written (estimated from shapes where not measured)"),
    ("input_shapes", "string", "operator input shapes as text, profiler rows"),
    ("source", "string", "where the figure comes from: 'gavel', 'pollux', 'vidur', 'splitwise', 'distserve', 'lepsim-profile', ..."),
    ("source_ref", "string", "repository@commit:path, or the profiler's torch/lepsim versions"),
)

COLUMN_NAMES: tuple[str, ...] = tuple(c[0] for c in COLUMNS)
DTYPES: dict[str, str] = {c[0]: c[1] for c in COLUMNS}
