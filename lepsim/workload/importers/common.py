"""What every trace importer shares: opening (plain or gzip), numbered CSV rows, one
place for unit conversion to SI, the job-row record, and the result type.

Unit conversion happens here and nowhere else (each importer names the upstream unit and
calls one of these):

* ``MILLI`` — Kubernetes milli-units (``cpu_milli``, ``gpu_milli``): value × 1e-3.
* ``MIB`` — mebibytes (``memory_mib``): value × 2**20 bytes.
* ``GB`` — decimal gigabytes (Tiresias ``mem_p_node``): value × 1e9 bytes.
* :func:`wallclock_seconds` — wall-clock timestamps (``2017-10-09 07:01:55``, optionally
  with a fraction of any length), read as UTC, → seconds from the earliest one of the file
  (with :func:`from_earliest`; whole seconds and nanoseconds as integers, so exact).
* Seconds are seconds: every duration/time column of the supported formats is already in s.
"""
from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from lepsim.errors import Problem

MILLI = 1e-3
MIB = float(2**20)
GB = 1e9

#: the keys of one job row, as :func:`lepsim.workload.traces.read_trace` returns them
JOB_KEYS = ("line", "submit", "gpus", "duration", "iterations", "name", "tenant", "model", "gpu_type",
            "cpus", "memory", "batch_size", "gpu_fraction", "node_selector")


def wallclock_seconds(text: str) -> tuple[int, int]:
    """``'2017-10-09 07:01:55'`` or ``'2023-11-16 18:17:03.9799600'`` → (whole seconds since
    the epoch, UTC; nanoseconds, digits past the ninth dropped).  Integers, so that
    differences between timestamps are exact (a float of epoch seconds has a 0.2 µs step).
    Raises ValueError."""
    text = text.strip()
    ns = 0
    if "." in text:
        text, digits = text.split(".", 1)
        if not digits.isdigit():
            raise ValueError(text)
        ns = int(digits[:9].ljust(9, "0"))
    dt = datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
    return int(dt.timestamp()), ns


def open_text(path: Path):
    """A text handle on ``path``; ``.gz`` files are decompressed on the fly."""
    path = Path(path)
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


@dataclass
class ImportResult:
    """Rows an importer produced and what it found wrong.

    ``rows``: job rows (dicts with :data:`JOB_KEYS`, SI units) or, for cluster and request
    formats, that format's records.  ``problems``: bad rows (one :class:`Problem` each, with
    file and line); they fail the import unless bad rows are skipped.  ``notes``: rows left
    out on purpose (e.g. pods that never ran), summarized; never errors.  ``errors``: the
    file cannot be read as the format (unreadable, empty, header lacks columns, malformed):
    always fatal, skipping bad rows does not help.
    """

    rows: list = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)


class Rows:
    """Numbered rows of a CSV (or TSV) file, with a header check and per-row problems.

    Iterate to get ``(line, cells)``; call :meth:`bad` to record a problem on the current
    row.  ``header`` None means the file has no header row (``columns`` gives the names).
    """

    def __init__(self, path: Path, display: str, *, columns: tuple[str, ...], required: tuple[str, ...] = (),
                 header: bool = True, delimiter: str = ","):
        self.path, self.display = Path(path), display
        self.columns, self.required = columns, required or columns
        self.has_header, self.delimiter = header, delimiter
        self.problems: list[Problem] = []
        self.errors: list[Problem] = []
        self.index: dict[str, int] = {}
        self._row_problems = 0

    def fail(self, line: int | None, message: str) -> None:
        """A bad row (skippable)."""
        self.problems.append(Problem(self.display, line, "", message))

    def fail_file(self, line: int | None, message: str) -> None:
        """The file cannot be read as this format (never skippable)."""
        self.errors.append(Problem(self.display, line, "", message))

    def result(self, rows: list, notes: list[Problem] | None = None) -> "ImportResult":
        return ImportResult(rows, self.problems, list(notes or ()), self.errors)

    def bad(self, line: int, column: str, found, expected: str) -> None:
        self.problems.append(Problem(self.display, line, column, f"found {found!r}, expected {expected}"))
        self._row_problems += 1

    def __iter__(self) -> Iterator[tuple[int, dict[str, str]]]:
        try:
            fh = open_text(self.path)
        except OSError as e:
            self.fail_file(None, f"cannot read trace: {e.strerror or e}")
            return
        with fh:
            reader = csv.reader(fh, delimiter=self.delimiter)
            try:
                if self.has_header:
                    try:
                        head = next(reader)
                    except StopIteration:
                        self.fail_file(1, "trace is empty, expected a header row")
                        return
                    cols = {h.strip().lower(): i for i, h in enumerate(head)}
                    missing = [c for c in self.required if c not in cols]
                    if missing:
                        self.fail_file(1, f"header lacks {', '.join(missing)}; found columns {', '.join(head)}")
                        return
                    self.index = {c: cols[c] for c in self.columns if c in cols}
                else:
                    self.index = {c: i for i, c in enumerate(self.columns)}
                width = max(self.index.values()) + 1 if self.index else 0
                while True:
                    try:
                        row = next(reader)
                    except StopIteration:
                        return
                    line = reader.line_num
                    if not row or all(not c.strip() for c in row):
                        continue
                    if len(row) < width:
                        self.fail(line, f"found {len(row)} fields, expected {width} ({', '.join(self.columns[:width])})")
                        continue
                    yield line, {c: row[i].strip() for c, i in self.index.items()}
            except (csv.Error, UnicodeDecodeError, EOFError, gzip.BadGzipFile) as e:
                self.fail_file(getattr(reader, "line_num", None) or None, f"malformed file: {e}")

    def start_row(self) -> int:
        """Problem count before a row's checks (compare with :meth:`row_ok`)."""
        return self._row_problems

    def row_ok(self, mark: int) -> bool:
        return self._row_problems == mark


def number(rows: Rows, line: int, col: str, text: str, *, minimum: float | None = None, strict: bool = False,
           integer: bool = False, expected: str | None = None) -> float | None:
    """Parse a numeric cell, recording a problem (and returning None) when it is bad."""
    try:
        v = float(text)
        if v != v or v in (float("inf"), float("-inf")):
            raise ValueError
        if integer and v != int(v):
            raise ValueError
        if minimum is not None and (v <= minimum if strict else v < minimum):
            raise ValueError
    except ValueError:
        what = expected or ("an integer" if integer else "a number")
        if minimum is not None:
            what += f" {'>' if strict else '>='} {minimum:g}"
        rows.bad(line, col, text, what)
        return None
    return int(v) if integer else v


def wallclock_cell(rows: Rows, line: int, col: str, text: str, example: str) -> tuple[int, int] | None:
    """A wall-clock cell as :func:`wallclock_seconds` gives it (None and a recorded problem
    when bad); :func:`from_earliest` turns such values into seconds from the earliest."""
    try:
        return wallclock_seconds(text)
    except ValueError:
        rows.bad(line, col, text, f"a wall-clock time such as {example}")
        return None


def from_earliest(records: list[dict], key: str) -> None:
    """Seconds from the earliest ``records[*][key]`` (wall-clock pairs, or plain seconds)."""
    if not records:
        return
    t0 = min(r[key] for r in records)
    if isinstance(t0, tuple):
        s0, n0 = t0
        for r in records:
            s, n = r[key]
            r[key] = ((s - s0) * 1_000_000_000 + (n - n0)) / 1e9  # exact integers, one rounding
    else:
        for r in records:
            r[key] -= t0


def job_row(line: int, submit: float, gpus: int, *, duration: float | None = None, iterations: float | None = None,
            name: str | None = None, tenant: str | None = None, model: str | None = None, gpu_type: str | None = None,
            cpus: float | None = None, memory: float | None = None, batch_size: int | None = None,
            gpu_fraction: float = 1.0) -> dict:
    """One job row in SI units (the shape the CSV reader returns).  ``gpu_fraction`` < 1 is
    the share of one GPU a 1-GPU job uses; ``node_selector``
    (required node labels) is empty: no upstream format has one."""
    return dict(line=line, submit=submit, gpus=gpus, duration=duration, iterations=iterations, name=name or None,
                tenant=tenant, model=model or None, gpu_type=gpu_type or None, cpus=cpus, memory=memory,
                batch_size=batch_size, gpu_fraction=gpu_fraction, node_selector=())



def summarize_lines(display: str, lines: list[int], what: str) -> Problem:
    """One note for many rows left out for the same reason: count and first lines."""
    shown = ", ".join(str(x) for x in lines[:5]) + (", …" if len(lines) > 5 else "")
    return Problem(display, lines[0], "", f"{len(lines)} row{'s' if len(lines) != 1 else ''} {what} (lines {shown})")
