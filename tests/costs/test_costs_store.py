"""Profile store: schema, round trips, validation, queries."""
from __future__ import annotations

import pandas as pd
import pytest

from lepsim.costs import schema
from lepsim.costs.store import ProfileStore, StoreError, coerce_frame, empty_frame


def _rows(**over):
    base = dict(device="V100", model="resnet50", phase="train_iteration", batch_size=64, num_gpus=1,
                placement="1", time_s=0.25, source="test")
    base.update(over)
    return pd.DataFrame([base])


def test_empty_frame_has_schema_columns_and_dtypes():
    df = empty_frame()
    assert tuple(df.columns) == schema.COLUMN_NAMES
    for c, t in schema.DTYPES.items():
        assert str(df[c].dtype) == ("string" if t == "string" else t), c


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_round_trip(tmp_path, suffix):
    s = ProfileStore(coerce_frame(_rows(), fill_missing=True))
    p = s.save(tmp_path / f"p{suffix}")
    back = ProfileStore.load(p)
    assert tuple(back.frame.columns) == schema.COLUMN_NAMES
    assert back.frame["time_s"].iloc[0] == pytest.approx(0.25)
    assert back.frame["batch_size"].iloc[0] == 64
    assert str(back.frame["batch_size"].dtype) == "Int64"
    assert back.frame["operator"].iloc[0] == ""


def test_missing_column_is_an_error(tmp_path):
    df = coerce_frame(_rows(), fill_missing=True).drop(columns=["source_ref"])
    p = tmp_path / "bad.csv"
    df.to_csv(p, index=False)
    with pytest.raises(StoreError, match="missing column"):
        ProfileStore.load(p)


@pytest.mark.parametrize("over, match", [
    (dict(time_s=-1.0), "time_s"),
    (dict(time_s=float("nan")), "time_s"),
    (dict(phase="warmup"), "unknown phase"),
    (dict(device=None), "device"),
    (dict(batch_size=0), "batch_size"),
])
def test_bad_values_are_errors(over, match):
    with pytest.raises(StoreError, match=match):
        ProfileStore(coerce_frame(_rows(**over), fill_missing=True))


def test_non_integer_in_integer_column():
    with pytest.raises(StoreError, match="integers"):
        coerce_frame(_rows(batch_size=1.5), fill_missing=True)


def test_unknown_file_type(tmp_path):
    with pytest.raises(StoreError, match="unknown profile file type"):
        ProfileStore.load(tmp_path / "x.json")


def test_query_and_concat():
    a = ProfileStore(coerce_frame(_rows(), fill_missing=True))
    b = ProfileStore(coerce_frame(_rows(device="P100", time_s=0.5), fill_missing=True))
    s = ProfileStore.concat([a, b])
    assert len(s) == 2
    assert s.devices() == ["P100", "V100"]
    assert len(s.query(device="P100")) == 1
    assert len(s.query(device=["P100", "V100"], model="resnet50")) == 2
    assert s.query(device="P100")["time_s"].iloc[0] == 0.5


def test_bundled_store_matches_adapters():
    """store.parquet must be what `python -m lepsim.costs.build_store` writes today."""
    from lepsim.costs import bundled_store
    from lepsim.costs.build_store import build

    fresh = build().frame
    packed = bundled_store().frame
    assert len(fresh) == len(packed)
    pd.testing.assert_frame_equal(fresh.reset_index(drop=True), packed.reset_index(drop=True), check_exact=False, rtol=1e-12)
    ProfileStore(packed)  # and it validates
