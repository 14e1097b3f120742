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

    models = (Constant, Choice, Uniform, Exponential, Erlang, Hyperexponential, Lognormal, BoundedPareto)
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

    @model_validator(mode="after")
    def _template_or_fields(self):
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


class ClusterSpec(Spec):
    pools: tuple[NodePool, ...] = Field(min_length=1)
    network: NetworkSpec | None = Field(
        None, description="the fabric between nodes and storage (default: none, transfers are unconstrained)")


# ----------------------------------------------------------------------------- workload
class JobFields(Spec):
    """What a training job asks for; shared by inline jobs and generator templates."""

    tenant: str = "default"
    model: str | None = Field(None, description="model name (needed for iteration-based jobs)")
    gpu_type: str | None = Field(None, description="required GPU type; null = any type")
    batch_size: Annotated[int, Field(ge=1)] | None = Field(None, description="per-GPU batch size")


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

    @model_validator(mode="after")
    def _one_size(self):
        if (self.duration is None) == (self.iterations is None):
            raise ValueError("expected exactly one of duration or iterations")
        if self.iterations is not None and self.model is None:
            raise ValueError("found iterations without a model, expected a model whose cost profile gives the runtime")
        if self.end is not None and self.end <= self.start:
            raise ValueError("found end <= start, expected end after start")
        return self


class PoissonGenerator(_GeneratorBase):
    """Poisson arrivals at ``rate`` between ``start`` and ``end`` (or for ``count`` jobs)."""

    kind: Literal["poisson"]


class BurstGenerator(_GeneratorBase):
    """Poisson arrivals whose rate is multiplied by ``factor`` inside each window."""

    kind: Literal["burst"]
    factor: Annotated[float, Field(ge=0)]
    windows: tuple[Window, ...] = Field(min_length=1)
    period: PosDuration | None = Field(None, description="repeat the windows with this period")

    @model_validator(mode="after")
    def _windows_in_period(self):
        if self.period is not None and any(w.end > self.period for w in self.windows):
            raise ValueError(f"found a window ending after the period ({self.period:g}s), expected windows inside "
                             "[0, period]")
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


class WorkloadDefaults(Spec):
    cpus_per_gpu: Annotated[float, Field(ge=0)] = 0.0
    memory_per_gpu: Annotated[Bytes, Field(ge=0)] = 0.0


class WorkloadSpec(Spec):
    defaults: WorkloadDefaults = WorkloadDefaults()
    jobs: tuple[InlineJob, ...] = ()
    generators: tuple[Generator, ...] = ()
    traces: tuple[TraceSource, ...] = ()

    @model_validator(mode="after")
    def _something(self):
        if not (self.jobs or self.generators or self.traces):
            raise ValueError("found no jobs, generators or traces, expected at least one source of jobs")
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
    # (directory that relative paths resolve against, file name for messages); set by the loader
    _source: tuple[str, str] | None = PrivateAttr(None)
    # built nodes and jobs by workload content and seed (lepsim.build); copies share it
    _built: dict = PrivateAttr(default_factory=dict)

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
WorkloadSpec.model_rebuild()
Scenario.model_rebuild()
