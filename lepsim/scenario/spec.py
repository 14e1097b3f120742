"""Pydantic models of a scenario file: frozen, pure data, unknown keys rejected.

Quantities are written with units (``"6h"``, ``"20/h"``, ``"80GiB"``, ``"25GB/s"``) and are
stored here in SI units (seconds, events/s, bytes, bytes/s).  The JSON Schema of these
models is what ``lepsim schema`` prints.  Registry- and catalog-dependent checks (known GPU
types, policy names and parameters, whether a job can ever fit) are done by
:mod:`lepsim.scenario.loader` after these models validate.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    WithJsonSchema,
    model_validator,
)

from lepsim.units import UnitError, parse_bandwidth, parse_bytes, parse_duration, parse_rate


def _unit(parser, example: str, description: str):
    def validate(v):
        try:
            return parser(v)
        except UnitError as e:
            raise ValueError(str(e)) from None

    return [
        BeforeValidator(validate),
        WithJsonSchema(
            {"anyOf": [{"type": "number"}, {"type": "string"}], "description": description, "examples": [example]}
        ),
    ]


Duration = Annotated[float, *_unit(parse_duration, "6h", "duration: number of seconds or '90s', '250ms', '30min', '6h', '1.5d'")]
Rate = Annotated[float, *_unit(parse_rate, "20/h", "rate: events per second or '20/h', '0.5/s', '3/min'")]
Bytes = Annotated[float, *_unit(parse_bytes, "80GiB", "size: bytes or '80GiB', '40GB', '512MiB'")]
Bandwidth = Annotated[float, *_unit(parse_bandwidth, "25GB/s", "bandwidth: bytes/s or '25GB/s', '100Gb/s'")]

NonNegDuration = Annotated[Duration, Field(ge=0)]
PosDuration = Annotated[Duration, Field(gt=0)]


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ----------------------------------------------------------------------------- distributions
# A distribution is written as a mapping with a ``dist`` key, or as a bare value meaning a
# constant.  Numeric parameters take the unit of the field they describe (a duration
# distribution accepts "30min"; a GPU-count distribution takes plain numbers).


def _check_weights(values, weights) -> None:
    if weights is not None:
        if len(weights) != len(values):
            raise ValueError(f"found {len(weights)} weights for {len(values)} values, expected one weight per value")
        if sum(weights) <= 0:
            raise ValueError("found weights summing to 0, expected a positive sum")


class _DistSpec(Spec):
    # built on first use, after _dist_models has given each class its final name (the name
    # that the JSON Schema shows)
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


def _choice_model(Q, name: str):
    """The ``{dist: choice, values, weights}`` model for values of type ``Q``."""

    class Choice(_DistSpec):
        """Pick one of ``values`` with probabilities ``weights`` (default: uniform)."""

        dist: Literal["choice"]
        values: tuple[Q, ...] = Field(min_length=1)
        weights: tuple[Annotated[float, Field(ge=0)], ...] | None = None

        @model_validator(mode="after")
        def _weights(self):
            _check_weights(self.values, self.weights)
            return self

    Choice.__name__ = Choice.__qualname__ = name
    return Choice


def _dist_models(Q, suffix: str):
    """Build the distribution models whose parameters are quantities of type ``Q``."""

    class Constant(_DistSpec):
        dist: Literal["constant"]
        value: Q

    Choice = _choice_model(Q, "Choice")

    class Uniform(_DistSpec):
        dist: Literal["uniform"]
        low: Q
        high: Q

        @model_validator(mode="after")
        def _order(self):
            if self.high < self.low:
                raise ValueError(f"found low={self.low} > high={self.high}, expected low <= high")
            return self

    class Exponential(_DistSpec):
        dist: Literal["exponential"]
        mean: Annotated[Q, Field(gt=0)]

    class Erlang(_DistSpec):
        """Sum of ``k`` exponentials; squared coefficient of variation 1/k."""

        dist: Literal["erlang"]
        k: Annotated[int, Field(ge=1)]
        mean: Annotated[Q, Field(gt=0)]

    class Hyperexponential(_DistSpec):
        """Exponential with mean ``means[i]`` chosen with probability ``probs[i]``."""

        dist: Literal["hyperexponential"]
        means: tuple[Annotated[Q, Field(gt=0)], ...] = Field(min_length=1)
        probs: tuple[Annotated[float, Field(ge=0)], ...]

        @model_validator(mode="after")
        def _probs(self):
            if len(self.probs) != len(self.means):
                raise ValueError("expected one probability per mean")
            if abs(sum(self.probs) - 1.0) > 1e-9:
                raise ValueError(f"found probabilities summing to {sum(self.probs):g}, expected 1")
            return self

    class Lognormal(_DistSpec):
        """Log-normal with the given ``median`` (= exp(mu)) and log-space ``sigma``."""

        dist: Literal["lognormal"]
        median: Annotated[Q, Field(gt=0)]
        sigma: Annotated[float, Field(ge=0)]
        min: Q | None = None
        max: Q | None = None

    class BoundedPareto(_DistSpec):
        """Pareto with shape ``alpha`` truncated to [low, high] (heavy-tailed job sizes)."""

        dist: Literal["bounded_pareto"]
        alpha: Annotated[float, Field(gt=0)]
        low: Annotated[Q, Field(gt=0)]
        high: Annotated[Q, Field(gt=0)]

        @model_validator(mode="after")
        def _order(self):
            if self.high <= self.low:
                raise ValueError(f"found low={self.low} >= high={self.high}, expected low < high")
            return self

    class LogUniform(_DistSpec):
        """log(x) uniform on [log low, log high] (as Gavel draws job durations)."""

        dist: Literal["loguniform"]
        low: Annotated[Q, Field(gt=0)]
        high: Annotated[Q, Field(gt=0)]

        @model_validator(mode="after")
        def _order(self):
            if self.high < self.low:
                raise ValueError(f"found low={self.low} > high={self.high}, expected low <= high")
            return self

    models = (Constant, Choice, Uniform, Exponential, Erlang, Hyperexponential, Lognormal, BoundedPareto, LogUniform)
    for m in models:
        m.__name__ = m.__qualname__ = f"{m.__name__}{suffix}"
    union = Annotated[Union[models], Field(discriminator="dist")]  # type: ignore[valid-type]

    def scalar_to_constant(v: Any):
        if isinstance(v, (int, float, str)) and not isinstance(v, bool):
            return {"dist": "constant", "value": v}
        return v

    # the JSON Schema shows both forms: a bare value (a constant) or a distribution mapping
    return Annotated[union, BeforeValidator(scalar_to_constant, json_schema_input_type=Union[float, str, union])]


DurationDist = _dist_models(Duration, "Duration")
CountDist = _dist_models(float, "Count")
def _label_tag(v: Any) -> str:
    return "choice" if isinstance(v, (dict, BaseModel)) else "label"


LabelDist = Annotated[
    Union[Annotated[str, Tag("label")], Annotated["LabelChoice", Tag("choice")]],
    Discriminator(_label_tag),
    Field(description="a name, or {dist: choice, values: [...], weights: [...]}"),
]


LabelChoice = _choice_model(str, "LabelChoice")


# ----------------------------------------------------------------------------- cluster
class AutoscaleSpec(Spec):
    """A cloud pool whose nodes a policy adds and removes (AddNodes / RemoveNodes)."""

    min: Annotated[int, Field(ge=0)] = Field(0, description="nodes provisioned at the start, never removed below")
    provisioning_delay: NonNegDuration = Field(0.0, description="an added node becomes allocatable this long after "
                                               "AddNodes (billed from AddNodes on)")


class NodePool(Spec):
    """``count`` identical nodes, from a catalog template and/or explicit fields."""

    name: str | None = Field(None, description="pool name (default: template or gpu type)")
    count: Annotated[int, Field(ge=1)]
    template: str | None = Field(None, description="node template from the hardware catalog, e.g. dgx-a100")
    gpu_type: str | None = Field(None, description="GPU type from the catalog; null for CPU-only nodes")
    gpus_per_node: Annotated[int, Field(ge=0)] | None = None
    cpus: Annotated[int, Field(ge=1)] | None = None
    memory: Annotated[Bytes, Field(gt=0)] | None = None
    intra_node_link: Literal["nvswitch", "nvlink", "pcie", "infinity-fabric", "none"] | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    price_per_hour: Annotated[float, Field(ge=0)] | None = Field(
        None, description="price of one node for one hour (dollars per node-hour); gives the cost_usd metric")
    autoscale: AutoscaleSpec | None = Field(
        None, description="cloud autoscaling: count is the most nodes; autoscale.min are provisioned at the start")

    @model_validator(mode="after")
    def _template_or_fields(self):
        if self.autoscale is not None and self.autoscale.min > self.count:
            raise ValueError(f"found autoscale.min {self.autoscale.min} > count {self.count}, expected at most count "
                             "(count is the most nodes the pool can have)")
        if self.template is None:
            missing = [f for f in ("gpus_per_node", "cpus", "memory") if getattr(self, f) is None]
            if missing:
                raise ValueError(
                    f"found neither a template nor {', '.join(missing)}, expected a catalog template or explicit "
                    "gpu_type, gpus_per_node, cpus and memory"
                )
            if (self.gpus_per_node or 0) > 0 and self.gpu_type is None:
                raise ValueError("found gpus_per_node > 0 without gpu_type, expected a gpu_type")
        return self


class NetworkEdge(Spec):
    """One full-duplex cable of an explicit topology: ``capacity`` in each direction."""

    a: str = Field(description="an endpoint ('node:<index>', 'storage') or a switch name")
    b: str
    capacity: Annotated[Bandwidth, Field(gt=0)] = Field(description="bytes/s in each direction")

    @model_validator(mode="after")
    def _distinct(self):
        if self.a == self.b:
            raise ValueError(f"found an edge from {self.a!r} to itself, expected two different ends")
        return self


class StorageAttach(Spec):
    """Where the shared storage endpoint ``storage`` plugs into the fabric."""

    attach: str = Field("spine", description="'spine', 'rack:<r>' (that rack's ToR) or, with explicit edges, ignored")
    bandwidth: Annotated[Bandwidth, Field(gt=0)] | None = Field(
        None, description="capacity of the storage endpoint's link, each direction (default: unlimited)")


class NetworkSpec(Spec):
    """The data-center fabric: a leaf-spine built from a few numbers, or an explicit edge list.

    Every node ``i`` is an endpoint ``node:<i>`` (its NIC side) with a link of its NIC
    bandwidth to its top-of-rack switch; ``gpus:<i>`` (the node's GPUs) hangs off it by the
    host (PCIe) link.  Paths are shortest paths (docs/scenario.md).
    """

    topology: Literal["leaf-spine", "edges"] = Field("leaf-spine", description="leaf-spine or an explicit edge list")
    nic_bandwidth: Annotated[Bandwidth, Field(gt=0)] | None = Field(
        None, description="every node's NIC, each direction (default: the node template's NIC bandwidth)")
    nodes_per_rack: Annotated[int, Field(ge=1)] | None = Field(
        None, description="leaf-spine: nodes per top-of-rack switch, in node order (default: racks by the node "
                           "label 'rack', else one rack per pool)")
    oversubscription: Annotated[float, Field(ge=1)] = Field(
        1.0, description="leaf-spine: a rack's NIC bandwidth over its uplink bandwidth (1 = non-blocking)")
    uplink_bandwidth: Annotated[Bandwidth, Field(gt=0)] | None = Field(
        None, description="leaf-spine: each ToR's uplink to the spine, each direction (instead of oversubscription)")
    edges: tuple[NetworkEdge, ...] = Field((), description="topology: edges - the cables")
    storage: StorageAttach = StorageAttach()

    @model_validator(mode="after")
    def _shape(self):
        if self.topology == "edges":
            if not self.edges:
                raise ValueError("found topology: edges without edges, expected at least one edge")
            extra = [f for f in ("nodes_per_rack", "uplink_bandwidth") if getattr(self, f) is not None]
            if self.oversubscription != 1.0:
                extra.append("oversubscription")
            if extra:
                raise ValueError(f"found {', '.join(extra)} with topology: edges, expected them only for leaf-spine")
        else:
            if self.edges:
                raise ValueError("found edges with topology: leaf-spine, expected topology: edges")
            if self.uplink_bandwidth is not None and self.oversubscription != 1.0:
                raise ValueError("found both uplink_bandwidth and oversubscription, expected one of them")
        return self


class PoolsFromTrace(Spec):
    """Node pools read from an upstream cluster file (docs/traces.md): one pool per kind of node."""

    trace: str = Field(description="cluster file (plain or .gz), relative to the scenario file")
    format: Literal["tiresias-cluster", "alibaba-nodes"] = Field(description="the file's format")
    gpu_type: str | None = Field(None, description="GPU type of a file that names none (tiresias-cluster)")
    gpu_types: dict[str, str] = Field(default_factory=dict,
                                      description="upstream GPU model -> catalog GPU type (alibaba-nodes)")


def _pool_tag(v: Any) -> str:
    trace = ("trace" in v) if isinstance(v, dict) else isinstance(v, PoolsFromTrace)
    return "PoolsFromTrace" if trace else "NodePool"


PoolEntry = Annotated[
    Union[Annotated[NodePool, Tag("NodePool")], Annotated[PoolsFromTrace, Tag("PoolsFromTrace")]],
    Discriminator(_pool_tag),
]


class ClusterSpec(Spec):
    pools: tuple[PoolEntry, ...] = Field(
        min_length=1, description="node pools, or {trace, format} entries that read pools from a cluster file")
    network: NetworkSpec | None = Field(
        None, description="the fabric between nodes and storage (default: none, transfers are unconstrained)")


# ----------------------------------------------------------------------------- workload
class JobFields(Spec):
    """What a training job asks for; shared by inline jobs and generator templates."""

    tenant: str = "default"
    model: str | None = Field(None, description="model name (needed for iteration-based jobs)")
    gpu_type: str | None = Field(None, description="required GPU type; null = any type")
    batch_size: Annotated[int, Field(ge=1)] | None = Field(None, description="per-GPU batch size")
    node_selector: dict[str, str] = Field(
        default_factory=dict, description="node labels the job requires (every key=value among a node's labels)"
    )
    gpu_fraction: Annotated[float, Field(gt=0, le=1)] = Field(
        1.0, description="share of one GPU (compute and memory) a 1-GPU job uses; < 1 lets jobs share a GPU"
    )
    dataset_size: Annotated[Bytes, Field(gt=0)] | None = Field(
        None, description="bytes of training data read from storage at each start (and per epoch unless cached); "
        "needs a storage section")
    dataset_samples: Annotated[int, Field(ge=1)] | None = Field(
        None, description="samples in the dataset (with iterations and batch size: epochs, hence per-epoch reads)")
    checkpoint_size: Annotated[Bytes, Field(gt=0)] | None = Field(
        None, description="bytes of one checkpoint (default: the model's parameter count x storage.checkpoint_bytes_per_param)")
    checkpoint_interval: PosDuration | None = Field(
        None, description="write a checkpoint after this much running time (default: storage.checkpoint_interval)")
    priority: int = Field(0, description="priority class (integer, higher = more important): under policy "
                          "`priority` a job of a higher class preempts jobs of lower classes")
    min_gpus: Annotated[int, Field(ge=1)] | None = Field(
        None, description="elastic job: fewest GPUs an elastic policy may shrink it to (default: gpus when max_gpus is set)")
    max_gpus: Annotated[int, Field(ge=1)] | None = Field(
        None, description="elastic job: most GPUs an elastic policy may grow it to (default: gpus when min_gpus is set)")


class InlineJob(JobFields):
    name: str | None = None
    submit: NonNegDuration = 0.0
    gpus: Annotated[int, Field(ge=0)]
    cpus: Annotated[float, Field(ge=0)] | None = Field(None, description="CPU cores in total (default: cpus_per_gpu x gpus)")
    memory: Annotated[Bytes, Field(ge=0)] | None = Field(None, description="host memory in total")
    duration: PosDuration | None = Field(None, description="runtime on the allocation it asks for")
    iterations: Annotated[float, Field(gt=0)] | None = Field(None, description="training iterations (runtime from the cost model)")

    @model_validator(mode="after")
    def _one_size(self):
        if (self.duration is None) == (self.iterations is None):
            raise ValueError("expected exactly one of duration or iterations")
        if self.iterations is not None and self.model is None:
            raise ValueError("found iterations without a model, expected a model whose cost profile gives the runtime")
        if self.gpu_fraction < 1 and self.gpus != 1:
            raise ValueError(f"found gpu_fraction {self.gpu_fraction:g} with gpus {self.gpus}, expected gpus: 1 "
                             "(a share of one GPU)")
        if self.min_gpus is not None or self.max_gpus is not None:
            lo = self.gpus if self.min_gpus is None else self.min_gpus
            hi = self.gpus if self.max_gpus is None else self.max_gpus
            if not (1 <= lo <= self.gpus <= hi) or self.gpu_fraction < 1:
                raise ValueError(f"found min_gpus {lo}, gpus {self.gpus}, max_gpus {hi}, expected "
                                 "1 <= min_gpus <= gpus <= max_gpus (whole GPUs)")
        return self


class Window(Spec):
    start: NonNegDuration
    end: NonNegDuration

    @model_validator(mode="after")
    def _order(self):
        if self.end <= self.start:
            raise ValueError(f"found end {self.end:g}s <= start {self.start:g}s, expected end after start")
        return self


class _GeneratorBase(JobFields):
    name: str | None = None
    rate: Annotated[Rate, Field(gt=0)]
    start: NonNegDuration = 0.0
    end: NonNegDuration | None = Field(None, description="last possible submit time (default: simulation horizon)")
    count: Annotated[int, Field(ge=1)] | None = Field(None, description="stop after this many jobs")
    gpus: CountDist = Field(1, validate_default=True)
    cpus_per_gpu: Annotated[float, Field(ge=0)] | None = None
    memory_per_gpu: Annotated[Bytes, Field(ge=0)] | None = None
    duration: DurationDist | None = None
    iterations: CountDist | None = None
    tenant: LabelDist = "default"  # type: ignore[assignment]
    model: LabelDist | None = None  # type: ignore[assignment]
    reference_gpu: str | None = Field(
        None,
        description="with duration and model: the duration is the runtime on this GPU type (the job's GPUs on "
        "one node); the job becomes duration / iteration time iterations, so its runtime on other types comes "
        "from the cost model (as Gavel's simulator sizes jobs)",
    )

    @model_validator(mode="after")
    def _one_size(self):
        if (self.duration is None) == (self.iterations is None):
            raise ValueError("expected exactly one of duration or iterations")
        if self.iterations is not None and self.model is None:
            raise ValueError("found iterations without a model, expected a model whose cost profile gives the runtime")
        if self.reference_gpu is not None and (self.duration is None or self.model is None):
            raise ValueError("found reference_gpu without a duration and a model, expected both (the duration is "
                             "converted to iterations of the model on that GPU type)")
        if self.end is not None and self.end <= self.start:
            raise ValueError("found end <= start, expected end after start")
        return self


class PoissonGenerator(_GeneratorBase):
    """Poisson arrivals at ``rate`` between ``start`` and ``end`` (or for ``count`` jobs)."""

    kind: Literal["poisson"]


def _check_windows_in_period(windows, period) -> None:
    """Burst windows (of job generators and request arrivals) lie inside their period."""
    if period is not None and any(w.end > period for w in windows):
        raise ValueError(f"found a window ending after the period ({period:g}s), expected windows inside [0, period]")


class BurstGenerator(_GeneratorBase):
    """Poisson arrivals whose rate is multiplied by ``factor`` inside each window."""

    kind: Literal["burst"]
    factor: Annotated[float, Field(ge=0)]
    windows: tuple[Window, ...] = Field(min_length=1)
    period: PosDuration | None = Field(None, description="repeat the windows with this period")

    @model_validator(mode="after")
    def _windows_in_period(self):
        _check_windows_in_period(self.windows, self.period)
        return self


Generator = Annotated[Union[PoissonGenerator, BurstGenerator], Field(discriminator="kind")]


class TraceSource(Spec):
    """A job trace: lepsim's CSV (one job per row, see docs/scenario.md for the columns) or
    an upstream format read by an importer (docs/traces.md)."""

    path: str = Field(description="trace file (plain or .gz), relative to the scenario file")
    format: Literal["csv", "philly", "gavel", "tiresias", "pollux", "alibaba-pods"] = Field(
        "csv", description="file format: lepsim's CSV, or an upstream trace (docs/traces.md)")
    gpu_types: dict[str, str] = Field(default_factory=dict,
                                      description="upstream GPU model name -> catalog GPU type (alibaba-pods)")
    time_scale: Annotated[float, Field(gt=0)] = Field(1.0, description="multiply submit times by this")
    duration_scale: Annotated[float, Field(gt=0)] = Field(1.0, description="multiply durations by this")
    time_unit: Literal["s", "min", "h"] = Field("s", description="unit of plain numbers in time columns (format csv)")
    limit: Annotated[int, Field(ge=1)] | None = Field(None, description="read at most this many jobs")
    skip_bad_rows: bool = Field(False, description="skip (and report) bad rows instead of failing")
    tenant: str | None = Field(None, description="tenant for rows without one")
    cpus_per_gpu: Annotated[float, Field(ge=0)] | None = None
    memory_per_gpu: Annotated[Bytes, Field(ge=0)] | None = None
    dataset_size: Annotated[Bytes, Field(gt=0)] | None = Field(None, description="every row's dataset_size (see jobs)")
    dataset_samples: Annotated[int, Field(ge=1)] | None = Field(None, description="every row's dataset_samples")
    checkpoint_size: Annotated[Bytes, Field(gt=0)] | None = Field(None, description="every row's checkpoint_size")
    checkpoint_interval: PosDuration | None = Field(None, description="every row's checkpoint_interval")

    @model_validator(mode="after")
    def _csv_only(self):
        if self.format != "csv" and self.time_unit != "s":
            raise ValueError(f"found time_unit {self.time_unit!r} with format {self.format!r}, expected time_unit only "
                             "with format csv (importers convert their format's own units)")
        return self



# ----------------------------------------------------------------------------- inference services
class ReplicaRange(Spec):
    """An autoscaled replica count: a scaling policy keeps it within [min, max]."""

    min: Annotated[int, Field(ge=0)]
    max: Annotated[int, Field(ge=1)]
    initial: Annotated[int, Field(ge=0)] | None = Field(None, description="replicas at time 0 (default: min)")

    @model_validator(mode="after")
    def _order(self):
        if self.max < self.min:
            raise ValueError(f"found min={self.min} > max={self.max}, expected min <= max")
        if self.initial is not None and not (self.min <= self.initial <= self.max):
            raise ValueError(f"found initial={self.initial}, expected min <= initial <= max")
        return self


class ContinuousBatching(Spec):
    """Iteration-level (continuous) batching with a KV-cache token budget (Orca, vLLM)."""

    kind: Literal["continuous"]
    max_batch: Annotated[int, Field(ge=1)] = Field(256, description="most requests in a batch at once")
    kv_cache_tokens: Annotated[int, Field(ge=1)] | None = Field(
        None, description="KV-cache budget in tokens (default: from GPU memory, weights and the model's shape)")
    max_prefill_tokens: Annotated[int, Field(ge=1)] = Field(
        4096, description="most prompt tokens in one prefill iteration (a longer prompt runs alone)")


class StaticBatching(Spec):
    """Static batching: a batch forms, runs to its longest request, then the next forms."""

    kind: Literal["static"]
    max_batch: Annotated[int, Field(ge=1)] = Field(8, description="a batch starts when this many wait")
    timeout: NonNegDuration = Field(0.0, description="... or when the oldest waiting request has waited this long")


Batching = Annotated[Union[ContinuousBatching, StaticBatching], Field(discriminator="kind")]


class QueueLimits(Spec):
    limit: Annotated[int, Field(ge=0)] | None = Field(
        None, description="most requests waiting (not yet in a batch) in the service; more are rejected")
    timeout: PosDuration | None = Field(None, description="a request not in a batch this long after arrival is dropped")


class LatencyTarget(Spec):
    p50: PosDuration | None = None
    p99: PosDuration | None = None


class SLOSpec(Spec):
    """Latency targets.  A request meets the SLO when each of its latencies is within every
    target given (p50 and p99 targets are per-request bounds for attainment; the summary also
    reports whether the service's percentiles meet them)."""

    ttft: LatencyTarget | None = Field(None, description="time to first token")
    tpot: LatencyTarget | None = Field(None, description="time per output token after the first")
    e2e: LatencyTarget | None = Field(None, description="end-to-end latency")


class _ArrivalBase(Spec):
    start: NonNegDuration = 0.0
    end: NonNegDuration | None = Field(None, description="no arrivals after this (default: the horizon)")
    count: Annotated[int, Field(ge=1)] | None = Field(None, description="stop after this many requests")


class PoissonArrivals(_ArrivalBase):
    kind: Literal["poisson"]
    rate: Annotated[Rate, Field(gt=0)]


class BurstArrivals(_ArrivalBase):
    """Poisson at ``rate``, multiplied by ``factor`` inside each window (as job generators)."""

    kind: Literal["burst"]
    rate: Annotated[Rate, Field(gt=0)]
    factor: Annotated[float, Field(ge=0)]
    windows: tuple[Window, ...] = Field(min_length=1)
    period: PosDuration | None = Field(None, description="repeat the windows with this period")

    @model_validator(mode="after")
    def _windows_in_period(self):
        _check_windows_in_period(self.windows, self.period)
        return self


class MMPPArrivals(_ArrivalBase):
    """Markov-modulated Poisson: state i has rate ``rates[i]`` and lasts Exp(``holding[i]``);
    then the next state is drawn uniformly among the others (two states: they alternate)."""

    kind: Literal["mmpp"]
    rates: tuple[Annotated[Rate, Field(ge=0)], ...] = Field(min_length=2)
    holding: tuple[PosDuration, ...] = Field(min_length=2, description="mean time in each state")

    @model_validator(mode="after")
    def _same_length(self):
        if len(self.rates) != len(self.holding):
            raise ValueError(f"found {len(self.rates)} rates and {len(self.holding)} holding times, expected one each")
        return self


class DiurnalArrivals(_ArrivalBase):
    """Non-homogeneous Poisson: rate(t) = rate x (1 + amplitude x cos(2 pi (t - peak) / period))."""

    kind: Literal["diurnal"]
    rate: Annotated[Rate, Field(gt=0)] = Field(description="mean rate")
    amplitude: Annotated[float, Field(ge=0, le=1)] = 0.5
    period: PosDuration = 86400.0
    peak: NonNegDuration = Field(0.0, description="time of the highest rate")


class TraceArrivals(Spec):
    """Replay of an Azure LLM inference trace (2023 format: TIMESTAMP, ContextTokens,
    GeneratedTokens); request tokens come from the trace."""

    kind: Literal["trace"]
    path: str = Field(description="CSV file relative to the scenario, or builtin:azure-conv / builtin:azure-code "
                                  "(bundled samples)")
    time_scale: Annotated[float, Field(gt=0)] = Field(1.0, description="multiply inter-arrival times by this")
    start: NonNegDuration = Field(0.0, description="the first request arrives at this time")
    limit: Annotated[int, Field(ge=1)] | None = Field(None, description="read at most this many requests")
    loop: bool = Field(False, description="replay the trace again after its end until the horizon")


Arrivals = Annotated[Union[PoissonArrivals, BurstArrivals, MMPPArrivals, DiurnalArrivals, TraceArrivals],
                     Field(discriminator="kind")]


class ServiceSpec(Spec):
    """An inference service: replicas of one model on one GPU type, a router, a batching
    policy, a request stream and its SLOs."""

    name: str
    model: str | None = Field(None, description="LLM whose prefill/decode profiles time the iterations")
    gpu_type: str
    tensor_parallel: Annotated[int, Field(ge=1)] = Field(1, description="GPUs per replica")
    replicas: Annotated[int, Field(ge=0)] | ReplicaRange = 1
    router: Literal["round-robin", "least-outstanding", "power-of-two"] = "least-outstanding"
    max_outstanding: Annotated[int, Field(ge=1)] | None = Field(
        None, description="route to a replica only while it holds fewer requests; else wait in the service queue")
    batching: Batching | None = Field(None, description="default: {kind: continuous} (none for service_time)")
    queue: QueueLimits = QueueLimits()
    slo: SLOSpec = SLOSpec()
    cold_start: NonNegDuration | None = Field(
        None, description="seconds from placement to serving (default: weights over storage bandwidth, else 60s)")
    priority: int = Field(100, description="the replicas' job priority (training jobs have 0)")
    tenant: str | None = Field(None, description="tenant of the replicas (default: the service name)")
    cpus_per_gpu: Annotated[float, Field(ge=0)] | None = None
    memory_per_gpu: Annotated[Bytes, Field(ge=0)] | None = None
    arrivals: Arrivals
    prompt_tokens: CountDist | None = Field(None, description="prompt tokens per request (not with a trace)")
    output_tokens: CountDist | None = Field(None, description="output tokens per request (not with a trace)")
    service_time: DurationDist | None = Field(
        None, description="model-free: each request holds its replica this long (one at a time)")
    metrics_window: PosDuration = Field(60.0, description="length of the per-window metrics' windows")

    @model_validator(mode="after")
    def _consistent(self):
        trace = self.arrivals.kind == "trace"
        if self.service_time is not None:
            if self.model is not None:
                raise ValueError("found both service_time and model, expected one: a model (the cost model times "
                                 "iterations) or a service_time (model-free)")
            if self.batching is not None:
                raise ValueError("found batching with service_time, expected none (a model-free replica serves one "
                                 "request at a time)")
        elif self.model is None:
            raise ValueError("found neither model nor service_time, expected one of them")
        if trace and (self.prompt_tokens is not None or self.output_tokens is not None):
            raise ValueError("found prompt_tokens/output_tokens with trace arrivals, expected the trace's tokens only")
        if self.model is not None and self.batching is None:
            object.__setattr__(self, "batching", ContinuousBatching(kind="continuous"))
        if self.model is not None and not trace and (self.prompt_tokens is None or self.output_tokens is None):
            raise ValueError("found a model without prompt_tokens and output_tokens, expected both (or trace arrivals)")
        return self


class WorkloadDefaults(Spec):
    cpus_per_gpu: Annotated[float, Field(ge=0)] = 0.0
    memory_per_gpu: Annotated[Bytes, Field(ge=0)] = 0.0


class TenantSpec(Spec):
    """Per-tenant settings (tenants not listed have the defaults)."""

    isolated: bool = Field(False, description="the tenant's jobs never share a node with another tenant's jobs")


class WorkloadSpec(Spec):
    defaults: WorkloadDefaults = WorkloadDefaults()
    jobs: tuple[InlineJob, ...] = ()
    generators: tuple[Generator, ...] = ()
    traces: tuple[TraceSource, ...] = ()
    services: tuple[ServiceSpec, ...] = ()
    tenants: dict[str, TenantSpec] = Field(default_factory=dict, description="per-tenant settings, by tenant name")

    @model_validator(mode="after")
    def _something(self):
        if not (self.jobs or self.generators or self.traces or self.services):
            raise ValueError("found no jobs, generators, traces or services, expected at least one source of work")
        names = [s.name for s in self.services]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"found service names {dup} more than once, expected unique names")
        return self


# ----------------------------------------------------------------------------- scheduler
class PreemptionSpec(Spec):
    """What a preemption costs until the storage model makes it bandwidth-based."""

    checkpoint: NonNegDuration = Field(0.0, description="GPUs stay held this long after a preemption")
    restore: NonNegDuration = Field(0.0, description="a resumed job holds its GPUs this long before progressing")


class SchedulerSpec(Spec):
    policy: str = Field(description="policy name (lepsim policies lists them)")
    params: dict[str, Any] = Field(default_factory=dict, description="the policy's parameters")
    round: PosDuration | None = Field(None, description="also invoke the policy every round")
    preemption: PreemptionSpec = PreemptionSpec()


# ----------------------------------------------------------------------------- storage and failures
class NodeCacheSpec(Spec):
    """A node-local cache (local NVMe): a dataset that fits is read from storage once per start."""

    size: Annotated[Bytes, Field(gt=0)] = Field(description="cache bytes per node, shared by the jobs on the node")
    bandwidth: Annotated[Bandwidth, Field(gt=0)] = Field(description="read bandwidth per node, shared by its jobs")


class StorageSpec(Spec):
    """The shared storage service: datasets are read from it, checkpoints written to it."""

    bandwidth: Annotated[Bandwidth, Field(gt=0)] = Field(description="aggregate bandwidth, shared max-min by all transfers")
    capacity: Annotated[Bytes, Field(gt=0)] | None = Field(
        None, description="bytes available for checkpoints (one kept per job); a write that does not fit fails")
    cache: NodeCacheSpec | None = None
    checkpoint_interval: PosDuration | None = Field(None, description="default periodic checkpoint interval of jobs")
    checkpoint_bytes_per_param: Annotated[float, Field(gt=0)] = Field(
        4.0, description="checkpoint bytes per model parameter when a job gives no checkpoint_size (4: fp32 weights)")


class FaultSpec(Spec):
    """One node failure at a given time."""

    node: str = Field(description="node name, '<pool>/<k>'")
    at: NonNegDuration
    repair: PosDuration = Field(description="time until the node is back")


class OutageSpec(Spec):
    """The storage service slowed (or stopped: bandwidth 0) for a while."""

    at: NonNegDuration
    duration: PosDuration
    bandwidth: Annotated[Bandwidth, Field(ge=0)] = Field(0.0, description="bandwidth during the outage")


class LinkOutageSpec(Spec):
    """One network cable down (capacity 0 both ways) for a while; needs a cluster.network."""

    link: tuple[str, str] = Field(description="the cable's two endpoints as the topology names them, "
                                              "e.g. [tor:0, spine] or [node:3, tor:0]")
    at: NonNegDuration = Field(description="when the cable goes down")
    duration: PosDuration | None = Field(None, description="how long it stays down (or give until)")
    until: PosDuration | None = Field(None, description="when it comes back (or give duration)")

    @model_validator(mode="after")
    def _one_end(self):
        if (self.duration is None) == (self.until is None):
            raise ValueError("found " + ("both duration and until" if self.duration is not None else
                                         "neither duration nor until") + ", expected exactly one")
        if self.until is not None and self.until <= self.at:
            raise ValueError(f"found until {self.until:g} s <= at {self.at:g} s, expected the end after the start")
        if self.link[0] == self.link[1]:
            raise ValueError(f"found link [{self.link[0]}, {self.link[1]}], expected two different endpoints")
        return self

    @property
    def end(self) -> float:
        """When the cable is back (seconds)."""
        return self.until if self.until is not None else self.at + self.duration


class FailuresSpec(Spec):
    """Node failures (random from MTBF/MTTR per node, and/or listed), storage and link outages."""

    mtbf: DurationDist | None = Field(None, description="time between failures of each node (running time up)")
    mttr: DurationDist | None = Field(None, description="time to repair a failed node")
    faults: tuple[FaultSpec, ...] = ()
    storage_outages: tuple[OutageSpec, ...] = ()
    link_outages: tuple[LinkOutageSpec, ...] = Field(
        (), description="network cables down for a while (need cluster.network)")
    max_retries: Annotated[int, Field(ge=0)] = Field(
        3, description="a job interrupted by failures more than this many times ends as failed")

    @model_validator(mode="after")
    def _both(self):
        if (self.mtbf is None) != (self.mttr is None):
            raise ValueError("found only one of mtbf and mttr, expected both or neither")
        return self


# ----------------------------------------------------------------------------- simulation
class SimulationSpec(Spec):
    seed: Annotated[int, Field(ge=0, strict=True)] = 0
    horizon: PosDuration | None = Field(None, description="stop here; null = run until every job ends")
    warmup: NonNegDuration = Field(0.0, description="jobs submitted before this are not measured")
    cooldown: NonNegDuration = Field(0.0, description="with a horizon: jobs submitted in the last cooldown are not measured")

    @model_validator(mode="after")
    def _window(self):
        if self.horizon is not None and self.warmup + self.cooldown >= self.horizon:
            raise ValueError("found warmup + cooldown >= horizon, expected a non-empty measurement window")
        return self


class CostsSpec(Spec):
    profiles: tuple[str, ...] = Field((), description="extra profile files (Parquet/CSV), relative to the scenario")


class Scenario(Spec):
    """A complete scenario: cluster, workload, scheduler, simulation settings."""

    name: str | None = None
    description: str = ""
    cluster: ClusterSpec
    workload: WorkloadSpec
    scheduler: SchedulerSpec
    simulation: SimulationSpec = SimulationSpec()
    costs: CostsSpec = CostsSpec()
    storage: StorageSpec | None = Field(None, description="shared storage: bandwidth-based checkpoints, restores, data reads")
    failures: FailuresSpec | None = Field(None, description="node failures, storage and link outages")
    # (directory that relative paths resolve against, file name for messages); set by the loader
    _source: tuple[str, str] | None = PrivateAttr(None)
    # built nodes and jobs by workload content and seed (lepsim.build); copies share it
    _built: dict = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _services_need_a_horizon(self):
        if self.workload.services and self.simulation.horizon is None:
            raise ValueError("found workload.services without simulation.horizon, expected a horizon (service "
                             "replicas never finish on their own)")
        return self

    def with_overrides(self, *, policy: str | None = None, params: dict | None = None, seed: int | None = None,
                       values: dict | None = None) -> "Scenario":
        """A validated copy with another policy/params/seed (the engine never mutates a spec).

        ``values`` maps dotted field paths to new values, e.g.
        ``{"workload.generators[0].rate": "30/h", "cluster.pools.0.count": 8}`` (list items
        by ``[i]`` or ``.i``; values as a scenario file would write them, units included);
        they are applied first and the whole scenario is validated again.

        Raises :class:`lepsim.errors.ScenarioError` when an override is invalid (e.g. a
        negative seed, a path that does not exist); the policy name and parameters are
        checked when the copy is built into a simulation (or by
        :func:`lepsim.scenario.loader.check_scenario`).
        """
        from pydantic import ValidationError

        from lepsim.errors import Problem, ScenarioError

        if values:
            return self._with_values(values).with_overrides(policy=policy, params=params, seed=seed)
        sched = self.scheduler.model_dump()
        if policy is not None:
            sched.update(policy=policy, params=dict(params or {}))
        elif params is not None:
            sched.update(params=dict(params))
        sim = self.simulation.model_dump()
        if seed is not None:
            sim["seed"] = seed
        try:
            new = self.model_copy(update={"scheduler": SchedulerSpec.model_validate(sched),
                                          "simulation": SimulationSpec.model_validate(sim)})
        except ValidationError as e:
            file = self._source[1] if self._source else "<scenario>"
            raise ScenarioError([
                Problem(file, None, ".".join(["scheduler" if err["loc"][0] in SchedulerSpec.model_fields else "simulation",
                                              *map(str, err["loc"])]),
                        f"found {err.get('input')!r} (an override), expected {err['msg'].removeprefix('Input should be ')}")
                for err in e.errors(include_url=False)
            ]) from None
        return new

    def _with_values(self, values: dict) -> "Scenario":
        from pydantic import ValidationError

        from lepsim.errors import Problem, ScenarioError
        from lepsim.scenario.loader import _Source, format_path, parse_path, pydantic_problems

        file = self._source[1] if self._source else "<scenario>"
        data = self.model_dump(mode="python", round_trip=True)
        data = _thaw(data)
        problems: list = []
        for text, value in values.items():
            path = tuple(int(p) if isinstance(p, str) and p.isdigit() else p for p in parse_path(str(text)))
            cur = data
            for i, part in enumerate(path):
                last = i == len(path) - 1
                if isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur):
                    if last:
                        cur[part] = value
                    cur = cur[part]
                elif isinstance(cur, dict) and isinstance(part, str) and (part in cur or last):
                    if last:
                        cur[part] = value
                    cur = cur.get(part)
                else:
                    where = format_path(path[:i]) or "the scenario"
                    problems.append(Problem(file, None, format_path(path),
                                            f"found no {part!r} in {where} (an override), expected a path into the "
                                            "scenario"))
                    break
        if problems:
            raise ScenarioError(problems)
        try:
            new = Scenario.model_validate(data)
        except ValidationError as e:
            raise ScenarioError([
                Problem(p.file, None, p.path, f"{p.message} (an override)")
                for p in pydantic_problems(_Source(file, data, {}), e)
            ]) from None
        new._source = self._source
        new._built = self._built  # keyed by content: copies share it
        return new


def _thaw(obj):
    """Tuples → lists (so that a dotted override can replace an item), recursively."""
    if isinstance(obj, dict):
        return {k: _thaw(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_thaw(v) for v in obj]
    return obj


LabelChoice.model_rebuild()
_GeneratorBase.model_rebuild()
PoissonGenerator.model_rebuild()
BurstGenerator.model_rebuild()
ServiceSpec.model_rebuild()
WorkloadSpec.model_rebuild()
Scenario.model_rebuild()
