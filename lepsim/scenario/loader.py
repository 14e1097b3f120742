"""Load a scenario file: YAML → validated, frozen :class:`Scenario`, with precise errors.

Every problem found is reported at once as ``FILE:LINE: field.path: what was found, what
was expected`` (:class:`lepsim.errors.ScenarioError`).  Two stages: first the YAML and the
schema (all schema errors together); when the schema holds, the checks that need the
hardware catalog, the policy registry, the cost model and the trace files (unknown GPU
types and templates, unknown policies, bad policy parameters, jobs that can never fit, bad
trace rows — again all together).
"""
from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from lepsim.errors import Problem, ScenarioError
from lepsim.scenario.spec import Scenario

Loc = tuple[Any, ...]


# ----------------------------------------------------------------------------- YAML with lines
def _line_map(node, path: Loc = (), out: dict | None = None) -> dict:
    """{path tuple: 1-based line} for every mapping key and sequence item."""
    out = {} if out is None else out
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = k.value
            out[path + (key,)] = k.start_mark.line + 1
            _line_map(v, path + (key,), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            out[path + (i,)] = v.start_mark.line + 1
            _line_map(v, path + (i,), out)
    return out


def format_path(path: Loc) -> str:
    s = ""
    for p in path:
        s += f"[{p}]" if isinstance(p, int) else (f".{p}" if s else str(p))
    return s


def parse_path(text: str) -> Loc:
    """'workload.generators[0].rate' → ('workload', 'generators', 0, 'rate')."""
    out: list = []
    for part in text.replace("]", "").split("."):
        bits = part.split("[")
        if bits[0]:
            out.append(bits[0])
        out.extend(int(b) for b in bits[1:])
    return tuple(out)


class _Source:
    """A scenario's text, data and line map, to turn field paths into FILE:LINE."""

    def __init__(self, display: str, data: Any, lines: dict):
        self.display = display
        self.data = data
        self.lines = lines

    def line(self, path: Loc) -> int | None:
        while path not in self.lines and path:
            path = path[:-1]
        return self.lines.get(path)

    def problem(self, path: Loc | str, message: str) -> Problem:
        if isinstance(path, str):
            path = parse_path(path)
        return Problem(self.display, self.line(path), format_path(path), message)


def _data_path(data: Any, loc: Loc) -> Loc:
    """Keep the parts of a pydantic error location that exist in the data (drops union tags)."""
    out: list = []
    cur = data
    for part in loc:
        if isinstance(cur, dict) and part in cur:
            out.append(part)
            cur = cur[part]
        elif isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur):
            out.append(part)
            cur = cur[part]
        elif isinstance(cur, dict) and isinstance(part, str) and not _is_tag(part):
            out.append(part)  # a missing or unknown key: still name it
            cur = None
        # else: a union tag or validator name, not part of the user's document
    return tuple(out)


def _is_tag(part: str) -> bool:
    return part in _TAGS or "[" in part or part.startswith("function-")


_TAGS = {"NodePool", "PoolsFromTrace", "label", "choice", "uniform", "exponential", "erlang", "hyperexponential",
         "lognormal", "bounded_pareto", "loguniform", "poisson", "burst", "str", "LabelChoice", "tagged-union", "union",
         "json-or-python"}


def _fields_at(model: type[BaseModel], loc: Loc) -> list[str] | None:
    """Field names of the model found at ``loc`` (for 'unknown key' messages)."""
    cur: Any = model
    for part in loc:
        cur = _unwrap(cur, part)
        if cur is None:
            return None
    cur = _unwrap(cur, None)
    if isinstance(cur, type) and issubclass(cur, BaseModel):
        return list(cur.model_fields)
    return None


def _leaves(tp: Any) -> list:
    """The concrete types inside Annotated/Optional/Union layers."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _leaves(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        return [leaf for a in typing.get_args(tp) if a is not type(None) for leaf in _leaves(a)]
    return [tp]


def _is_model(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, BaseModel)


def _unwrap(tp: Any, part: Any) -> Any:
    """The type found one step along an error location (None when unknown)."""
    leaves = _leaves(tp)
    if part is None:
        models = [t for t in leaves if _is_model(t)]
        return models[0] if len(models) == 1 else tp
    for t in leaves:  # a tagged union member: the tag names the model
        if _is_model(t):
            if t.__name__ == part:
                return t
            for f in ("kind", "dist"):
                fi = t.model_fields.get(f)
                if fi is not None and part in typing.get_args(fi.annotation):
                    return t
    for t in leaves:
        if _is_model(t) and part in t.model_fields:
            return t.model_fields[part].annotation
        if typing.get_origin(t) in (tuple, list) and isinstance(part, int):
            return typing.get_args(t)[0]
    if _is_tag(str(part)):
        return tp  # a validator or union-branch name: stay where we are
    return None


_SHAPES = {
    "model_type": "a mapping", "dict_type": "a mapping", "model_attributes_type": "a mapping",
    "tuple_type": "a list", "list_type": "a list", "string_type": "a string",
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "float_type": "a number", "float_parsing": "a number", "bool_type": "true or false",
    "bool_parsing": "true or false",
}


def _describe(found: Any) -> str:
    if isinstance(found, dict):
        return "a mapping"
    if isinstance(found, (list, tuple)):
        return "a list"
    return repr(found)


def pydantic_problems(src: _Source, err: ValidationError, *, prefix: Loc = (), model: type[BaseModel] = Scenario,
                      data: Any = None) -> list[Problem]:
    """One Problem per pydantic error, with the user's field path and line."""
    data = src.data if data is None else data
    out: list[Problem] = []
    seen: set = set()
    errors = err.errors(include_url=False)
    for e in errors:
        loc = tuple(e["loc"])
        path = prefix + _data_path(data, loc)
        etype = e["type"]
        msg = e["msg"]
        if etype == "too_short" and isinstance(e.get("input"), (list, tuple)) and e["input"] and any(
            tuple(o["loc"][: len(loc)]) == loc and len(o["loc"]) > len(loc) for o in errors
        ):
            continue  # a non-empty list whose items failed: the items' errors say why
        if etype == "extra_forbidden":
            fields = _fields_at(model, loc[:-1])
            exp = f"one of: {', '.join(fields)}" if fields else "a documented key (see `lepsim schema`)"
            text = f"found unknown key {loc[-1]!r}, expected {exp}"
        elif etype == "missing":
            text = f"missing, expected a value for {loc[-1]!r}" if loc else "missing"
        elif etype == "value_error":
            text = msg.removeprefix("Value error, ")
        elif etype == "union_tag_invalid":
            ctx = e.get("ctx") or {}
            text = f"found {ctx.get('discriminator', 'tag')} {ctx.get('tag')!r}, expected one of {ctx.get('expected_tags')}"
            text = text.replace("found 'kind'", "found kind").replace("found 'dist'", "found dist")
        elif etype == "union_tag_not_found":
            ctx = e.get("ctx") or {}
            text = f"missing {ctx.get('discriminator', 'tag')}, expected a mapping with it"
        elif etype in _SHAPES:
            found = e.get("input")
            text = f"found {_describe(found)}, expected {_SHAPES[etype]}"
        else:
            found = e.get("input")
            expected = msg.removeprefix("Input should be ").removeprefix("input should be ")
            found_s = _describe(found)
            text = f"found {found_s}, expected {expected[0].lower() + expected[1:] if expected else expected}"
        key = (path, text)
        if key in seen:
            continue
        seen.add(key)
        out.append(src.problem(path, text))
    return out


# ----------------------------------------------------------------------------- loading
def _read(path: Path, display: str, *, kind: str = "scenario",
          keys: str = "cluster, workload and scheduler") -> _Source:
    """A YAML file (a ``kind`` file, a mapping with ``keys``) with its line map."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError([Problem(display, None, "", f"no such file, expected a {kind} YAML file")]) from None
    except IsADirectoryError:
        raise ScenarioError([Problem(display, None, "", f"is a directory, expected a {kind} YAML file")]) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ScenarioError([Problem(display, None, "", f"cannot read: {e}")]) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        what = " ".join(x for x in (e.context, e.problem) if x)
        raise ScenarioError([Problem(display, line, "", f"YAML syntax error: {what}")]) from None
    except yaml.YAMLError as e:
        raise ScenarioError([Problem(display, None, "", f"YAML error: {e}")]) from None
    if node is None or data is None:
        raise ScenarioError([Problem(display, 1, "", f"file is empty, expected a mapping with {keys}")])
    if not isinstance(data, dict):
        raise ScenarioError([Problem(display, 1, "", f"found a {type(data).__name__}, expected a mapping with {keys}")])
    return _Source(display, data, _line_map(node))


def load_scenario(path: str | Path, *, catalog=None, check: bool = True) -> Scenario:
    """Read, validate and check a scenario file; raise :class:`ScenarioError` listing every problem."""
    p = Path(path)
    display = str(path)
    src = _read(p, display)
    try:
        scenario = Scenario.model_validate(src.data)
    except ValidationError as e:
        problems = pydantic_problems(src, e)
        if check:
            seen = {p.path for p in problems}
            problems += [p for p in _raw_checks(src, catalog) if p.path not in seen]
            problems.sort(key=lambda p: (p.line or 0, p.path))
        raise ScenarioError(problems) from None
    scenario._source = (str(p.resolve().parent), display)
    if check:
        problems = check_scenario(scenario, catalog=catalog, src=src)
        if problems:
            raise ScenarioError(problems)
    return scenario


def _raw_checks(src: _Source, catalog) -> list[Problem]:
    """Name checks that do not need a valid schema (policy, GPU types, node templates), so
    that a file with schema errors also learns about these in the same run."""
    from lepsim.hardware import default_catalog
    from lepsim.policies import registry

    catalog = catalog or default_catalog()
    data = src.data
    out: list[Problem] = []

    def get(d, *keys):
        for k in keys:
            if isinstance(d, dict) and k in d:
                d = d[k]
            elif isinstance(d, list) and isinstance(k, int) and k < len(d):
                d = d[k]
            else:
                return None
        return d

    pol = get(data, "scheduler", "policy")
    if isinstance(pol, str) and pol not in registry.available():
        why = registry.broken().get(pol) or f"found {pol!r}, expected a policy: {', '.join(registry.available())}"
        out.append(src.problem(("scheduler", "policy"), why))
    gpus = ", ".join(catalog.known_gpu_names())
    pools = get(data, "cluster", "pools")
    for i, pool in enumerate(pools if isinstance(pools, list) else []):
        t = get(pool, "gpu_type")
        if isinstance(t, str) and catalog.gpu_name(t) is None:
            out.append(src.problem(("cluster", "pools", i, "gpu_type"), f"found {t!r}, expected a GPU type: {gpus}"))
        tpl = get(pool, "template")
        if isinstance(tpl, str) and tpl not in catalog.nodes:
            out.append(src.problem(("cluster", "pools", i, "template"),
                                   f"found {tpl!r}, expected a node template: {', '.join(sorted(catalog.nodes))}"))
    for section in ("jobs", "generators"):
        items = get(data, "workload", section)
        for i, item in enumerate(items if isinstance(items, list) else []):
            t = get(item, "gpu_type")
            if isinstance(t, str) and catalog.gpu_name(t) is None:
                out.append(src.problem(("workload", section, i, "gpu_type"), f"found {t!r}, expected a GPU type: {gpus}"))
    return out


def scenario_base(scenario: Scenario) -> tuple[Path, str]:
    """(directory relative paths resolve against, name used in messages)."""
    info = scenario._source
    if info is None:
        return Path.cwd(), "<scenario>"
    return Path(info[0]), info[1]


def check_scenario(scenario: Scenario, *, catalog=None, src: _Source | None = None) -> list[Problem]:
    """Catalog, registry, cost-model and trace checks; [] when the scenario can run."""
    from lepsim.build import build_parts  # local import: build depends on this module

    _, problems = build_parts(scenario, catalog=catalog, src=src)
    return problems
