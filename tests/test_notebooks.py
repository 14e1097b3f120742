"""The notebooks in notebooks/ run top to bottom without error, and are committed clean.

Each notebook is executed with nbclient in a kernel named ``python3`` that is pinned to the
interpreter running the tests (a kernelspec written to a temporary folder put first on
JUPYTER_PATH), so the notebook sees the same environment (lepsim installed with
``pip install -e '.[test]'``) whatever other ``python3`` kernels the machine has.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
KERNEL = "python3"
# Text a notebook must print (beyond running without errors): the sweep ran every cell.
MUST_PRINT = {"02_sweep_load.ipynb": ("(4 loads x ", " 0 failed")}


def _ids(paths):
    return [p.name for p in paths]


def test_there_are_notebooks():
    assert NOTEBOOKS, f"found no notebooks in {NOTEBOOK_DIR}"


@pytest.fixture(scope="module")
def python3_kernel(tmp_path_factory):
    """A ``python3`` kernelspec running ``sys.executable``, first on JUPYTER_PATH."""
    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client.kernelspec import KernelSpecManager

    data = tmp_path_factory.mktemp("jupyter")
    spec_dir = data / "kernels" / KERNEL
    # ipykernel's own spec (argv[0] = sys.executable), so the kernel runs in this environment
    write_kernel_spec(spec_dir, overrides={"display_name": "Python 3 (lepsim tests)"})
    with pytest.MonkeyPatch.context() as mp:
        old = os.environ.get("JUPYTER_PATH")
        mp.setenv("JUPYTER_PATH", str(data) + (os.pathsep + old if old else ""))
        mp.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
        spec = KernelSpecManager().get_kernel_spec(KERNEL)
        assert spec.argv[0] == sys.executable, spec.argv
        yield KERNEL


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_is_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == KERNEL, "expected kernelspec name python3"
    dirty = [
        i for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]
    assert not dirty, f"{path.name}: cells {dirty} have outputs or execution counts; clear them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_runs_without_errors(path, python3_kernel):
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name=python3_kernel, resources={"metadata": {"path": str(NOTEBOOK_DIR)}}
    )
    t0 = time.perf_counter()
    client.execute()   # raises CellExecutionError on the first failing cell
    elapsed = time.perf_counter() - t0
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    ran = [c for c in nb.cells if c.cell_type == "code"]
    assert ran and all(c.execution_count is not None for c in ran), "not every code cell ran"
    # Every notebook must show something: at least one figure or table came back.
    rich = [o for c in ran for o in c.outputs if o.output_type in ("display_data", "execute_result")]
    assert rich, f"{path.name} displayed nothing"
    printed = "".join(o.get("text", "") for c in ran for o in c.outputs if o.output_type == "stream")
    for text in MUST_PRINT.get(path.name, ()):
        assert text in printed, f"{path.name} did not print {text!r}"
    print(f"{path.name}: {elapsed:.1f} s")
