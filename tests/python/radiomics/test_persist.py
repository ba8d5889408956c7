"""skops persistence of the radiomics pipelines: same predictions, trusted types only, hash checked."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from srnomogram.errors import CheckpointError
from srnomogram.radiomics import make_model
from srnomogram.radiomics.persist import TRUSTED_TYPES, load_model, save_model


def _data(seed=0, n=60, p=12):
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n // 2)
    X = rng.normal(size=(n, p)) + y[:, None] * np.linspace(0, 1.5, p)
    return pd.DataFrame(X, columns=[f"f{i}" for i in range(p)]), y


@pytest.mark.parametrize("kind", ["lr", "svm"])
def test_saved_pipeline_predicts_exactly_as_the_fitted_one(tmp_path, kind):
    X, y = _data()
    model = make_model(kind, random_state=0).fit(X, y)
    path = save_model(model, tmp_path / f"{kind}.skops", X.columns, model=kind)
    loaded, meta = load_model(path)
    assert meta["features"] == list(X.columns)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_trusted_list_is_exactly_the_untrusted_types_of_both_pipelines(tmp_path):
    import skops.io as sio

    X, y = _data()
    found = set()
    for kind in ("lr", "svm"):
        p = save_model(make_model(kind).fit(X, y), tmp_path / f"{kind}.skops", X.columns)
        found |= set(sio.get_untrusted_types(file=p))
    assert found == set(TRUSTED_TYPES)


class Foreign:  # a type no one vouched for
    def __init__(self):
        self.payload = [1, 2, 3]


def test_a_file_with_a_type_outside_the_trusted_list_is_refused(tmp_path):
    p = save_model({"model": Foreign()}, tmp_path / "foreign.skops", [])
    with pytest.raises(CheckpointError, match="outside the trusted list: .*Foreign"):
        load_model(p)


def test_a_tampered_or_unhashed_file_is_refused(tmp_path):
    import json

    X, y = _data()
    p = save_model(make_model("lr").fit(X, y), tmp_path / "lr.skops", X.columns)
    data = p.read_bytes()
    p.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(CheckpointError, match="SHA-256 does not match lr.json"):
        load_model(p)
    meta = json.loads(p.with_suffix(".json").read_text(encoding="utf-8"))
    meta.pop("model_sha256")
    p.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="records no SHA-256"):
        load_model(p)
    p.with_suffix(".json").unlink()
    with pytest.raises(CheckpointError, match="has no lr.json"):
        load_model(p)
