"""``srnomogram validate STUDY_DIR MANIFEST -o OUT`` and ``srnomogram predict STUDY_DIR MANIFEST -o scores.csv``."""

from __future__ import annotations


def register(subparsers):
    v = subparsers.add_parser(
        "validate",
        help="external validation of a finished study on another labelled cohort",
        description="Apply a finished study, frozen (its SR model, feature settings, fitted models, cut-offs and "
        "nomogram), to a labelled manifest and report every model's external AUC (95%% CI), calibration "
        "(in-the-large, slope, rms::val.prob, Brier, Hosmer-Lemeshow), decision curves and sensitivity/specificity/"
        "PPV/NPV at the frozen training cut-off, per lesion (default) or per patient (--unit). Writes OUT/report.html, "
        "OUT/tables/*.csv, OUT/figures/ and OUT/board/. "
        "Cached: rerun to resume.",
    )
    v.add_argument("study", metavar="STUDY_DIR", help="output folder of 'srnomogram run'")
    v.add_argument("manifest", metavar="MANIFEST", help="labelled manifest of the external cohort")
    v.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="output folder: new, empty, or validate's own of this study (resumed); never a study's or another command's")
    v.add_argument("--recalibrate", action="store_true",
                   help="add a logistic recalibration (intercept, slope) of every model, reported separately")
    v.add_argument("--unit", choices=("lesion", "patient"), default="lesion",
                   help="'lesion' (default): every lesion, with every CI (decision curves included) from a bootstrap "
                        "over patients when a patient_id has several lesions. 'patient': a different estimand, one row "
                        "per patient: any lesion malignant, risk 1 - prod(1 - p) over its lesions")
    v.add_argument("--bootstraps", type=int, default=1000,
                   help="patient-bootstrap resamples (lesion level, when a patient has several lesions) and resamples of "
                        "the calibration curves' bands (default 1000)")
    v.add_argument("--strict", action="store_true",
                   help="refuse a cohort with lesions of the study's own cohort (an identical image file or a shared "
                        "case_id); without it they are a warning in the log and the report")
    v.add_argument("--by", action="append", default=[], metavar="COLUMN[:EDGES]",
                   help="statistics per subgroup of this manifest column (repeatable; table external_subgroups): COLUMN "
                        "for a categorical or text column, COLUMN:EDGES for a numeric one, e.g. age:40,60 for <40, "
                        "[40, 60), >=60 (left-closed bands). CIs: bootstrap over each subgroup's patients; no p-values")
    v.add_argument("--dca-bootstraps", type=int, default=500, help="bootstrap resamples of the decision-curve CIs (default 500; 0: none)")
    _common(v)
    v.set_defaults(func=_validate)

    p = subparsers.add_parser(
        "predict",
        help="score new lesions with a finished study (no labels needed)",
        description="Apply a finished study, frozen, to a manifest without labels: every model's malignancy score, "
        "the deep-learning score, and the clinical model's and nomogram's risk and points when the manifest has the "
        "clinical columns. Writes one CSV row per lesion.",
    )
    p.add_argument("study", metavar="STUDY_DIR", help="output folder of 'srnomogram run'")
    p.add_argument("manifest", metavar="MANIFEST", help="manifest of the lesions to score (label not needed)")
    p.add_argument("-o", "--output", required=True, metavar="SCORES_CSV", help="output CSV")
    p.add_argument("--work-dir", default=None,
                   help="cache folder (default: <SCORES_CSV stem>_work beside it): new, empty, or predict's own of this study")
    _common(p)
    p.set_defaults(func=_predict)


def _common(p):
    from ..cli import threads_arg

    p.add_argument("--jobs", type=int, default=None, help="feature-extraction workers (default: --threads)")
    threads_arg(p)
    p.add_argument("--device", default="auto", help="'auto', 'cpu', 'cuda', ... for the SR model and CNNs")
    p.add_argument("--scheduler", default=None, metavar="ADDR",
                   help="extract features and score the CNNs on the dask.distributed cluster of this scheduler, e.g. "
                        "tcp://HOST:8786 (default $DASK_SCHEDULER_ADDRESS, else locally; 'local' ignores the variable). "
                        "Needs the study, the images and the output on a filesystem shared with the workers")
    p.add_argument("--centre-reference", default=None, metavar="MANIFEST",
                   help="with a study that harmonises its features by centre (radiomics.harmonise): the unlabelled "
                        "reference sample of the centres it was not fitted on (default: the cohort itself, its features "
                        "and centre column only, never its labels); the results are conditional on it")
    p.add_argument("--force", action="append", default=[], metavar="STAGE", help="recompute a stage of the applied study (split, sr, ..., nomogram, statistics; 'all' for every one)")


def _validate(args):
    from ._cli import _quiet_pins
    from .external import validate

    _quiet_pins(args)
    print(validate(args.study, args.manifest, args.output, recalibrate=args.recalibrate, unit=args.unit,
                   bootstraps=args.bootstraps, dca_bootstraps=args.dca_bootstraps, jobs=args.jobs, device=args.device,
                   force=args.force, scheduler=args.scheduler, strict=args.strict,
                   centre_reference=args.centre_reference, by=args.by))
    return 0


def _predict(args):
    from ._cli import _quiet_pins
    from .external import predict

    _quiet_pins(args)
    print(predict(args.study, args.manifest, args.output, jobs=args.jobs, device=args.device, work_dir=args.work_dir,
                  force=args.force, scheduler=args.scheduler, centre_reference=args.centre_reference))
    return 0
