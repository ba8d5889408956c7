"""``srnomogram radiomics ...``: feature extraction and the OR/SR radiomics models."""

from __future__ import annotations

import logging
from pathlib import Path

from ..cli import command_group, threads_arg

log = logging.getLogger(__name__)


def _read_table(path):
    import pandas as pd

    from ..errors import InputError

    p = Path(path)
    if not p.is_file():
        raise InputError(f"Feature table {p} not found. Write one with 'srnomogram radiomics extract'.")
    df = pd.read_csv(p) if p.suffix.lower() == ".csv" else pd.read_parquet(p)
    if "case_id" in df.columns:
        df = df.set_index("case_id")
    df.index = df.index.astype(str)
    return df


def write_table(df, path) -> Path:
    """Write a feature table atomically: CSV when ``path`` ends with .csv, else parquet."""
    from ..utils import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix.lower() == ".csv":
            df.to_csv(tmp, index=True)
        else:
            df.to_parquet(tmp, index=True)
    return path


def _extract(args):
    from ..utils import check_output_dir, check_output_file
    from .extraction import extract

    check_output_file(args.output, "-o/--output", inputs={"MANIFEST": args.manifest}, example="features.parquet")
    if args.cache_dir:
        check_output_dir(args.cache_dir, "--cache-dir")
    if args.board:
        check_output_dir(args.board, "--board")
    feats = extract(args.manifest, image_col=args.image_col, jobs=args.jobs, params=args.params, cache_dir=args.cache_dir, mask_col=args.mask_col, scheduler=args.scheduler)
    out = write_table(feats, args.output)
    log.info("wrote %d features of %d lesions (%s) to %s", feats.shape[1], feats.shape[0], args.image_col, out)
    if args.board:
        from .models import write_board

        from ..names import images_of

        key = images_of(args.image_col)
        write_board(args.board, features={key: feats}, metadata={"manifest": str(args.manifest), "image_col": args.image_col, "params": str(args.params)})
        log.info("pinned radiomics_features_%s on %s", key, args.board)


def _fit(args):
    import joblib

    from ..data.manifest import load_manifest
    from ..errors import InputError
    from ..utils import check_output_dir, write_csv_atomic
    from .models import fit_or_sr_models, write_board

    check_output_dir(args.output, "-o/--output")
    if args.board:
        check_output_dir(args.board, "--board")
    df = load_manifest(args.manifest).set_index("case_id")
    if args.split_seed is not None:
        from ..data import stratified_split

        split = stratified_split(df.reset_index(), test_size=args.test_size, seed=args.split_seed)
        split.index = df.index
    elif "split" in df.columns:
        split = df["split"]
    else:
        raise InputError(f"{args.manifest} has no 'split' column. Add one with 'srnomogram cohort split', or pass --split-seed.")
    folds = None
    if args.folds:
        from ..validation import training_folds

        folds = training_folds(df.reset_index().assign(split=split.to_numpy()), n_splits=args.folds, seed=args.seed)
    patients = None
    if "patient_id" in df.columns:
        from ..data.manifest import patient_ids

        patients = patient_ids(df.reset_index()).set_axis(df.index)
    res = fit_or_sr_models(df["label"], split, _read_table(args.features), _read_table(args.sr_features) if args.sr_features else None,
                           random_state=args.seed, folds=folds, groups=patients)
    out = Path(args.output)
    write_csv_atomic(res["table2"], out / "radiomics_table2.csv")
    write_csv_atomic(res["scores"], out / "radiomics_scores.csv")
    if res["scores_oof"] is not None:
        write_csv_atomic(res["scores_oof"], out / "radiomics_scores_oof.csv")
    write_csv_atomic(res["report"], out / "radiomics_selected.csv")
    for name, model in res["models"].items():
        joblib.dump(model, out / f"{name}.joblib")
    t = res["table2"]
    for _, r in t[t["set"] == "test"].iterrows():
        log.info("%s test AUC %.3f (95%% CI %.3f-%.3f)", r["model"], r["auc"], r["auc_lower"], r["auc_upper"])
    log.info("wrote Table 2 rows, scores, selected features and fitted models to %s", out)
    if args.board:
        pins = write_board(args.board, res, metadata={"seed": args.seed, "manifest": str(args.manifest)})
        log.info("pinned %s on %s", ", ".join(pins), args.board)


def register(subparsers) -> None:
    """Add the ``radiomics`` command group."""
    _, sub = command_group(subparsers, "radiomics", help="PyRadiomics features (exact, fast) and the LR/SVM radiomics models", description="PyRadiomics-exact feature extraction and the paper's radiomics models.")

    p = sub.add_parser(
        "extract",
        help="extract the 107 PyRadiomics features of every lesion",
        description="Extract PyRadiomics features (default settings: the paper's 107) for every lesion of a manifest; values equal RadiomicsFeatureExtractor().execute().",
    )
    p.add_argument("manifest", metavar="MANIFEST")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="features table: parquet, or CSV if FILE ends with .csv")
    p.add_argument("--image-col", default="image", help="image column: image (OR) or image_sr (SR); default image")
    p.add_argument("--mask-col", default=None, help="mask column (default: mask, or mask_sr for image_sr when present)")
    p.add_argument("--params", default=None, metavar="YAML", help="PyRadiomics parameter file (default: PyRadiomics' defaults)")
    p.add_argument("-j", "--jobs", type=int, default=None, help="worker processes (default: --threads)")
    threads_arg(p)
    p.add_argument("--cache-dir", default=None, metavar="DIR", help="per-lesion result cache keyed by content hash")
    p.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="extract on the dask.distributed cluster of this scheduler, e.g. tcp://HOST:8786 (default: $DASK_SCHEDULER_ADDRESS, else locally); "
        "images, masks and the cache must be on a filesystem the workers share",
    )
    p.add_argument("--board", default=None, metavar="DIR", help="also pin the table on this board (radiomics_features_or/_sr)")
    p.set_defaults(func=_extract)

    p = sub.add_parser(
        "fit",
        help="fit OR_LR, OR_SVM (and SR_LR, SR_SVM) and report Table 2 rows",
        description="Mann–Whitney U p<0.05 -> z-score -> |r|>0.9 pruning -> LR / SVM on the training split; scores, Table 2 rows and selected features.",
    )
    p.add_argument("manifest", metavar="MANIFEST", help="manifest with label (and split) columns")
    p.add_argument("--features", required=True, metavar="FILE", help="OR features (parquet/CSV from 'radiomics extract')")
    p.add_argument("--sr-features", default=None, metavar="FILE", help="SR features (optional)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for radiomics_table2.csv, radiomics_scores.csv, radiomics_selected.csv and the fitted models")
    p.add_argument("--seed", type=int, default=0, help="model seed (default 0)")
    p.add_argument("--split-seed", type=int, default=None, help="make a stratified split with this seed instead of the manifest's split column")
    p.add_argument("--test-size", type=float, default=0.2, help="test fraction with --split-seed (default 0.2)")
    p.add_argument("--folds", type=int, default=None, metavar="K", help="also cross-fit over K stratified folds of the training lesions (seeded with --seed): radiomics_scores_oof.csv")
    p.add_argument("--board", default=None, metavar="DIR", help="also pin radiomics_scores, radiomics_selected and scores_<model_id> on this board (the study's pins)")
    p.set_defaults(func=_fit)
