"""Property-based tests of the .npz reader: any archive reads right or raises DatasetError."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from faultzoo.data import load_selection
from faultzoo.exceptions import DatasetError, FaultzooError

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

dtypes = st.sampled_from([np.uint8, np.int64, np.float32, np.int8, np.bool_])
shapes = st.sampled_from([(2, 32, 32, 3), (0, 32, 32, 3), (2, 32, 32, 1), (2, 30, 32, 3), (2, 32, 32), (3,)])
arrays = st.tuples(dtypes, shapes).flatmap(lambda ds: hnp.arrays(ds[0], ds[1]))
labels = st.tuples(st.sampled_from([np.int64, np.float64, np.int16]), st.sampled_from([(2,), (3,), (0,)])).flatmap(
    lambda ds: hnp.arrays(ds[0], ds[1], elements=st.integers(-2, 12)))


@SETTINGS
@given(st.dictionaries(st.sampled_from(["x", "y", "idx", "other"]), arrays | labels, max_size=4))
def test_any_npz_reads_right_or_raises_dataset_error(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("npz") / "images.npz"
    np.savez(path, **content)
    try:
        selection = load_selection(str(path), dataset="cifar10")
    except FaultzooError as exc:
        assert isinstance(exc, DatasetError)
        return
    x, y = content["x"], content["y"]
    assert x.dtype == np.uint8 and x.shape[1:] == (32, 32, 3) and len(x) > 0
    assert selection.x.shape == (len(x), 3, 32, 32) and selection.y.tolist() == y.astype(np.int64).tolist()
    assert ((y >= 0) & (y < 10)).all()


@SETTINGS
@given(st.binary(max_size=300))
def test_any_bytes_raise_dataset_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("npz") / "images.npz"
    path.write_bytes(data)
    try:
        load_selection(str(path), dataset="cifar10")
    except DatasetError:
        return
    raise AssertionError("random bytes were read as an image archive")
