"""``srnomogram run study.yaml`` and ``srnomogram demo``."""

from __future__ import annotations

import logging

from ..cli import threads_arg

logger = logging.getLogger(__name__)


def _common(p):
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a setting, e.g. --set deep.epochs=2 (repeatable; value read as YAML)")
    p.add_argument("--force", action="append", default=[], metavar="STAGE",
                   help="recompute a stage even when cached (repeatable; 'all' for every stage)")
    p.add_argument("--repeats", type=int, default=None, metavar="N",
                   help="also rerun the split-dependent stages for split seeds 0..N-1 (validation.repeats): "
                        "tables/repeated_splits*.csv, a figure and a report section")
    p.add_argument("--recipe", choices=("paper", "default"), default=None,
                   help="study.recipe: 'paper' runs the paper's two choices (nomogram.best_model_rule: test_auc, "
                        "nomogram.train_score: fitted), each with a warning in the report; 'default' this package's")
    p.add_argument("--scheduler", default=None, metavar="ADDR",
                   help="run radiomics extraction and the repeated splits' seeds on the dask.distributed cluster of this "
                        "scheduler, e.g. tcp://HOST:8786 (study.scheduler; default $DASK_SCHEDULER_ADDRESS, else locally; "
                        "'local' ignores the variable). Needs the study's files on a filesystem shared with the workers")
    threads_arg(p)


def register(subparsers):
    p = subparsers.add_parser("run", help="run (or resume) a study from its YAML file",
                              description="Run the whole study: split, SR, radiomics, CNNs, Table 2, "
                                          "nomogram, report. Finished stages are reused; rerun to resume.")
    p.add_argument("study", help="study YAML file (see inst/study/demo.yaml)")
    p.add_argument("-o", "--output", default=None, help="output folder (overrides study.output)")
    _common(p)
    p.set_defaults(func=_run)

    d = subparsers.add_parser(
        "demo",
        help="the whole study on the built-in demo cohort (CPU, reduced settings)",
        description="Write the synthetic demo cohort (120 lesions, 256 x 256 B-mode-like images with masks) and run "
        "the whole study on it with the reduced settings of demo.yaml, which the report's methods state: SR (a small "
        "GAN, 60 iterations), radiomics, one CNN architecture (MobileNetV2 on OR and SR images; the default also "
        "trains ResNet101) from scratch at 12 epochs and 64 px, each cross-fitted with 3 folds (default 5), nomogram "
        "with B = 1000. Ends by printing the report's path. 'srnomogram run' with a study file uses the full "
        "defaults; --set deep.archs=[mobilenet_v2,resnet101] restores the paper's two CNNs here.",
    )
    d.add_argument("-o", "--output", default="demo_study", help="output folder (default ./demo_study)")
    d.add_argument("-n", "--n-lesions", type=int, default=None, help="demo cohort size (default from demo.yaml)")
    _common(d)
    d.set_defaults(func=_demo)


def _quiet_pins(args):
    # pins logs every write at INFO ("Writing pin: ..."); the study logs its own stages.
    if not getattr(args, "verbose", False):
        logging.getLogger("pins").setLevel(logging.WARNING)


def _cli_overrides(args):
    import json

    extra = [] if args.repeats is None else [f"validation.repeats={args.repeats}"]
    if getattr(args, "recipe", None) is not None:
        extra.append(f"study.recipe={args.recipe}")
    if args.scheduler is not None:  # JSON-quoted: read as a YAML string whatever the address holds
        extra.append(f"study.scheduler={json.dumps(args.scheduler)}")
    if args.threads is not None:
        extra.append(f"study.threads={int(args.threads)}")
    return [*args.overrides, *extra]


def _run(args):
    _quiet_pins(args)
    from ..utils import check_output_dir
    from .config import load_config
    from .pipeline import run_study

    if args.output is not None:  # before load_config resolves an empty -o to the working directory
        check_output_dir(args.output, "-o/--output")
    cfg = load_config(args.study, overrides=_cli_overrides(args), output=args.output)
    check_output_dir(cfg.study.output, "-o/--output" if args.output is not None else "study.output")
    report = run_study(cfg, force=args.force)
    print(report)
    return 0


def _demo(args):
    _quiet_pins(args)
    from ..utils import check_output_dir
    from .demo import run_demo

    check_output_dir(args.output, "-o/--output")

    report = run_demo(args.output, n=args.n_lesions, overrides=_cli_overrides(args), force=args.force)
    print(report)
    return 0
