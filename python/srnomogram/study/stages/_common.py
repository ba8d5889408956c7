"""What the stage modules share: the helpers their fit and apply halves call, and the stages' cache keys."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ... import names


def _manifest_inputs(cfg, results):
    """Hashes of the manifest and of every image and mask it names (the study's raw inputs)."""
    from ...data.manifest import load_manifest, manifest_hashes

    return manifest_hashes(cfg.cohort.manifest, load_manifest(cfg.cohort.manifest))


def with_labels(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with a ``label`` column (the model's display label) right after its ``model`` id column, the join key."""
    if "label" in df.columns or "model" not in df.columns:
        return df
    out = df.copy()
    out.insert(list(out.columns).index("model") + 1, "label", out["model"].map(names.label))
    return out


def _scores_frame(cohort, **cols):
    out = cohort[["case_id", "split", "label"]].copy()
    for k, v in cols.items():
        out[k] = np.asarray(v, dtype=float)
    return out


def _ci_text(lo, hi, conf_level):
    return f"{100 * conf_level:.10g}% CI {lo:.3f}-{hi:.3f}"


def _write_timing(ctx, timing):
    """Wall times of cross-fitting vs the full-training-set fit, beside the stage (not in its hashed outputs)."""
    import json

    folder = Path(ctx.extra["scratch"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "timing.json").write_text(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in timing.items()}), encoding="utf-8")


def _applied_cohort(result) -> pd.DataFrame:
    """The cohort table an apply-mode stage wrote (``cohort.csv``, label optional), paths absolute."""
    from ...data.manifest import load_manifest

    return load_manifest(result.file("cohort.csv"), require_label=False)


def _alpha_key(cfg, results):
    return {"alpha": cfg.nomogram.alpha}  # Table S2's intervals


def _split_key(cfg, results):
    # the split seed and the cross-fitting folds (stratified k-fold from the study seed)
    return {"split_seed": cfg.split_seed, "folds": cfg.validation.folds, "fold_seed": cfg.study.seed}


def _seed_key(cfg, results):
    return {"seed": cfg.study.seed, "device": cfg.deep.device}


def _deep_key(cfg, results):
    # one CNN's result does not depend on which other CNNs the study trains
    deep = {k: v for k, v in cfg.to_dict()["deep"].items() if k not in ("archs", "images", "enabled")}
    return {"seed": cfg.study.seed, "deterministic": cfg.study.deterministic, "deep": deep}
