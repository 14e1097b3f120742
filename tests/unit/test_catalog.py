"""Tests of the hardware catalog (lepsim/hardware/catalog.yaml and its loader)."""
from __future__ import annotations

from pathlib import Path

import pytest

from lepsim.hardware import Catalog, CatalogError, GpuSpec, NodeTemplate, default_catalog, load_catalog
from lepsim.hardware.catalog import _key

REQUIRED_GPUS = [
    "K80", "P100", "V100", "A100-40GB", "A100-80GB", "A100-80GB-PCIE",
    "A40", "H100", "H200", "L4", "T4", "MI300X",
]

REQUIRED_NODES = [
    "dgx1-v100", "dgx-a100", "dgx-a100-40", "hgx-h100", "hgx-h200", "a40-4x", "l4-8x",
    "t4-4x", "p100-4x", "k80-4x", "v100-4x", "mi300x-8x", "cpu-32", "cpu-64",
]

GB = 1e9
TB_S = 1e12
T = 1e12
CATALOG_YAML = Path(__file__).resolve().parents[2] / "lepsim" / "hardware" / "catalog.yaml"


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return default_catalog()


# --------------------------------------------------------------------------- GPUs

def test_required_gpus_present_with_canonical_names(cat):
    assert set(REQUIRED_GPUS) <= set(cat.gpus)
    assert cat.known_gpu_names() == sorted(cat.gpus)
    for name in REQUIRED_GPUS:
        assert isinstance(cat.gpus[name], GpuSpec)
        assert cat.gpus[name].name == name
        assert cat.gpu_name(name) == name


@pytest.mark.parametrize("name", REQUIRED_GPUS)
def test_gpu_figures_positive_and_plausible(cat, name):
    g = cat.gpus[name]
    # SI units: bytes, bytes/s, FLOP/s, watts.
    assert 8 * GB <= g.memory_bytes <= 256 * GB
    assert 0.2 * TB_S <= g.memory_bandwidth <= 6 * TB_S
    assert 4 * T <= g.fp32_flops <= 200 * T
    assert 4 * T <= g.fp16_flops <= 1500 * T
    assert g.fp16_flops >= g.fp32_flops          # tensor cores or, for K80, equal by design
    assert 50 <= g.tdp_watts <= 1000
    assert 8 * GB <= g.host_link_bandwidth <= 128 * GB
    assert g.scaleup_link in {"nvlink", "nvswitch", "pcie", "infinity-fabric", "none"}
    for opt in (g.tf32_flops, g.fp64_flops, g.int8_ops):
        assert opt is None or 0.1 * T <= opt <= 3000 * T
    if g.tf32_flops is not None:
        assert g.fp32_flops <= g.tf32_flops <= g.fp16_flops
    if g.scaleup_link == "none":
        assert g.scaleup_bandwidth is None
    else:
        assert g.scaleup_bandwidth is not None and 100 * GB <= g.scaleup_bandwidth <= 1000 * GB
    assert g.sm_count is None or 10 <= g.sm_count <= 400
    assert g.source.strip(), f"{name} has no source"
    assert "datasheet" in g.source.lower() or "data sheet" in g.source.lower()


def test_exact_vendor_figures(cat):
    h100 = cat.gpu("H100")
    assert h100.fp16_flops == 989.4e12
    assert h100.tf32_flops == 494.7e12
    assert h100.memory_bandwidth == 3.35e12
    assert h100.memory_bytes == 80e9
    assert h100.scaleup_bandwidth == 900e9

    a100 = cat.gpu("A100-80GB")
    assert a100.memory_bandwidth == 2.039e12
    assert a100.memory_bytes == 80e9
    assert a100.fp16_flops == 312e12
    assert a100.fp32_flops == 19.5e12
    assert a100.int8_ops == 624e12

    assert cat.gpu("A100-40GB").memory_bandwidth == 1.555e12
    assert cat.gpu("A100-40GB").memory_bytes == 40e9
    assert cat.gpu("A100-80GB-PCIE").memory_bandwidth == 1.935e12
    assert cat.gpu("A100-80GB-PCIE").tdp_watts == 300
    assert cat.gpu("H200").memory_bytes == 141e9
    assert cat.gpu("H200").memory_bandwidth == 4.8e12
    assert cat.gpu("V100").memory_bytes == 32e9
    assert cat.gpu("V100").fp16_flops == 125e12
    assert cat.gpu("V100").tf32_flops is None     # Volta has no TF32
    assert cat.gpu("L4").fp16_flops == 121e12
    assert cat.gpu("T4").fp16_flops == 65e12
    assert cat.gpu("MI300X").fp16_flops == 1307.4e12
    assert cat.gpu("MI300X").memory_bytes == 192e9
    assert cat.gpu("MI300X").scaleup_link == "infinity-fabric"
    assert cat.gpu("P100").fp16_flops == 21.2e12
    assert cat.gpu("P100").memory_bandwidth == 732e9
    assert cat.gpu("A40").fp16_flops == 149.7e12
    assert cat.gpu("A40").memory_bytes == 48e9


def test_dense_not_sparse(cat):
    # Sparse figures are exactly 2x dense; none of these may have slipped in.
    assert cat.gpu("A100-80GB").fp16_flops != 624e12
    assert cat.gpu("H100").fp16_flops != 1979e12
    assert cat.gpu("H100").tf32_flops != 989e12
    assert cat.gpu("L4").fp16_flops != 242e12
    assert cat.gpu("MI300X").fp16_flops != 2614.9e12


def test_k80_is_per_die_without_tensor_cores(cat):
    k80 = cat.gpu("K80")
    assert k80.memory_bytes == 12e9
    assert k80.memory_bandwidth == 240e9
    assert k80.fp32_flops == 4.4e12
    assert k80.fp16_flops == k80.fp32_flops


def test_catalog_yaml_marks_recalled_figures():
    text = CATALOG_YAML.read_text()
    assert "re-check" in text
    assert "sparsity" in text


# --------------------------------------------------------------------------- aliases

@pytest.mark.parametrize(
    "alias, canon",
    [
        ("A100-80", "A100-80GB"),
        ("A100", "A100-80GB"),
        ("a100-80gb-sxm4", "A100-80GB"),
        ("a100_80gb", "A100-80GB"),
        ("A100 80GB", "A100-80GB"),
        ("  a100-80GB ", "A100-80GB"),
        ("A100-40", "A100-40GB"),
        ("a100_40gb", "A100-40GB"),
        ("a100-80gb-pcie", "A100-80GB-PCIE"),
        ("H100-SXM5", "H100"),
        ("h100_80gb", "H100"),
        ("V100-SXM2", "V100"),
        ("v100-32gb", "V100"),
        ("V100_16GB", "V100"),
        ("h200", "H200"),
        ("mi300x", "MI300X"),
        ("t4", "T4"),
        ("l4", "L4"),
        ("k80", "K80"),
        ("p100", "P100"),
        ("a40", "A40"),
    ],
)
def test_aliases_resolve(cat, alias, canon):
    assert cat.gpu_name(alias) == canon
    assert cat.gpu(alias) is cat.gpus[canon]


def test_unknown_gpu_name(cat):
    assert cat.gpu_name("B200") is None
    with pytest.raises(KeyError):
        cat.gpu("B200")


def test_no_alias_collides(cat):
    owner: dict[str, str] = {}
    for g in cat.gpus.values():
        for a in (g.name, *g.aliases):
            k = _key(a)
            assert owner.setdefault(k, g.name) == g.name, f"{a!r} names {owner[k]} and {g.name}"
            assert cat.gpu_name(a) == g.name


def test_alias_collision_in_file_raises(tmp_path):
    p = tmp_path / "dup.yaml"
    p.write_text(
        "gpus:\n"
        "  X1: {memory: 1GB, memory_bandwidth: 1GB/s, fp32_tflops: 1, fp16_tflops: 1, aliases: [shared]}\n"
        "  X2: {memory: 1GB, memory_bandwidth: 1GB/s, fp32_tflops: 1, fp16_tflops: 1, aliases: [SHARED]}\n"
    )
    with pytest.raises(CatalogError, match="shared|SHARED") as ei:
        load_catalog(p)
    assert str(p) in str(ei.value)


# --------------------------------------------------------------------------- nodes

def test_required_node_templates(cat):
    assert set(REQUIRED_NODES) <= set(cat.nodes)
    for name, t in cat.nodes.items():
        assert isinstance(t, NodeTemplate)
        assert t.name == name
        assert t.cpus > 0
        assert t.memory_bytes > 0
        assert t.nic_bandwidth > 0
        assert t.description.strip()
        assert "typical" in t.description.lower()


def test_node_gpu_types_resolve(cat):
    for t in cat.nodes.values():
        if t.gpu_type is not None:
            assert t.gpu_type in cat.gpus
            assert t.gpus >= 1
            assert t.intra_node_link in {"nvlink", "nvswitch", "pcie", "infinity-fabric"}


def test_cpu_only_templates(cat):
    for name in ("cpu-32", "cpu-64"):
        t = cat.nodes[name]
        assert t.gpu_type is None
        assert t.gpus == 0
        assert t.intra_node_link == "none"
    assert cat.nodes["cpu-32"].cpus == 32
    assert cat.nodes["cpu-64"].cpus == 64


@pytest.mark.parametrize(
    "node, gpu, n, link",
    [
        ("dgx1-v100", "V100", 8, "nvlink"),
        ("dgx-a100", "A100-80GB", 8, "nvswitch"),
        ("dgx-a100-40", "A100-40GB", 8, "nvswitch"),
        ("hgx-h100", "H100", 8, "nvswitch"),
        ("hgx-h200", "H200", 8, "nvswitch"),
        ("a40-4x", "A40", 4, "nvlink"),
        ("l4-8x", "L4", 8, "pcie"),
        ("t4-4x", "T4", 4, "pcie"),
        ("p100-4x", "P100", 4, "nvlink"),
        ("k80-4x", "K80", 4, "pcie"),
        ("v100-4x", "V100", 4, "nvlink"),
        ("mi300x-8x", "MI300X", 8, "infinity-fabric"),
    ],
)
def test_node_shapes(cat, node, gpu, n, link):
    t = cat.nodes[node]
    assert (t.gpu_type, t.gpus, t.intra_node_link) == (gpu, n, link)


def test_node_nic_and_host_figures(cat):
    assert cat.nodes["dgx1-v100"].nic_bandwidth == 400e9 / 8
    assert cat.nodes["dgx-a100"].nic_bandwidth == 1600e9 / 8
    assert cat.nodes["hgx-h100"].nic_bandwidth == 3200e9 / 8
    assert cat.nodes["a40-4x"].nic_bandwidth == 100e9 / 8
    assert cat.nodes["dgx1-v100"].cpus == 40
    assert cat.nodes["dgx1-v100"].memory_bytes == 512 * 1024**3
    assert cat.nodes["dgx-a100"].cpus == 128
    assert cat.nodes["dgx-a100"].memory_bytes == 2 * 1024**4
    for n in ("hgx-h100", "hgx-h200"):
        assert cat.nodes[n].cpus == 112
        assert cat.nodes[n].memory_bytes == 2 * 1024**4


# --------------------------------------------------------------------------- loader errors

_GOOD_GPU = "  G1: {memory: 16GB, memory_bandwidth: 900GB/s, fp32_tflops: 10, fp16_tflops: 100}\n"


@pytest.mark.parametrize(
    "text",
    [
        "gpus: [unclosed\n",                                   # YAML syntax error
        "",                                                    # empty file
        "- just\n- a list\n",                                  # not a mapping
        "gpus:\n  G1: {memory_bandwidth: 900GB/s, fp32_tflops: 10, fp16_tflops: 100}\n",  # no memory
        "gpus:\n  G1: {memory: 16 parsecs, memory_bandwidth: 900GB/s, fp32_tflops: 10, fp16_tflops: 100}\n",
        "gpus:\n  G1: {memory: 16GB, memory_bandwidth: 900GB/s, fp32_tflops: fast, fp16_tflops: 100}\n",
        "gpus:\n  G1: {memory: 16GB, memory_bandwidth: 0, fp32_tflops: 10, fp16_tflops: 100}\n",
        "gpus:\n  G1: 42\n",
        "gpus:\n" + _GOOD_GPU + "nodes:\n  n1: {gpu_type: G1, gpus: 4}\n",            # no cpus/memory
        "gpus:\n" + _GOOD_GPU + "nodes:\n  n1: {gpu_type: G1, gpus: 4, cpus: 8, memory: lots}\n",
        "gpus:\n" + _GOOD_GPU + "nodes:\n  n1: {gpu_type: null, gpus: 2, cpus: 8, memory: 1GiB}\n",
    ],
)
def test_malformed_catalog_raises_with_path(tmp_path, text):
    p = tmp_path / "bad_catalog.yaml"
    p.write_text(text)
    with pytest.raises(CatalogError) as ei:
        load_catalog(p)
    assert str(p) in str(ei.value)


def test_missing_file_raises_with_path(tmp_path):
    p = tmp_path / "nope.yaml"
    with pytest.raises(CatalogError) as ei:
        load_catalog(p)
    assert str(p) in str(ei.value)


def test_unknown_gpu_in_node_template_raises(tmp_path):
    p = tmp_path / "cat.yaml"
    p.write_text("gpus:\n" + _GOOD_GPU + "nodes:\n  n1: {gpu_type: B9000, gpus: 8, cpus: 8, memory: 64GiB}\n")
    with pytest.raises(CatalogError, match="B9000") as ei:
        load_catalog(p)
    assert str(p) in str(ei.value)
    assert "n1" in str(ei.value)


def test_small_custom_catalog_loads(tmp_path):
    p = tmp_path / "cat.yaml"
    p.write_text(
        "gpus:\n" + _GOOD_GPU.replace("}", ", aliases: [gee_one]}")
        + "nodes:\n  n1: {gpu_type: Gee One, gpus: 2, cpus: 8, memory: 64GiB, nic_bandwidth: 25Gb/s}\n"
    )
    c = load_catalog(p)
    assert c.gpu_name("g1") == "G1"
    assert c.nodes["n1"].gpu_type == "G1"
    assert c.nodes["n1"].intra_node_link == "pcie"          # default for GPU nodes
    assert c.nodes["n1"].nic_bandwidth == 25e9 / 8
    assert c.gpus["G1"].tf32_flops is None                  # optional fields stay unset


def test_default_catalog_is_cached(cat):
    assert default_catalog() is cat
    fresh = load_catalog()
    assert fresh.gpus == cat.gpus and fresh.nodes == cat.nodes
