"""``srnomogram update STUDY_DIR COHORT -o UPDATED``: update a finished study's nomogram for a new centre."""

from __future__ import annotations


def register(subparsers):
    from ._external_cli import _common

    u = subparsers.add_parser(
        "update",
        help="update a finished study's nomogram for a new centre (closed testing procedure)",
        description="Apply a finished study, frozen, to a labelled sample of a new centre and update its nomogram: "
        "none, recalibration in the large, logistic recalibration or refit, chosen by the closed testing procedure "
        "of Vergouwe et al. (Stat Med 2017). The image models are not refitted. Writes UPDATED as a frozen study that "
        "'srnomogram validate' and 'predict' take, with tables/update_*.csv (the tests, coefficients and the apparent "
        "and optimism-corrected performance in the new centre: bootstrap over patients), figures/figure6_nomogram "
        "and calculator.html. Cached: rerun to resume.",
    )
    u.add_argument("study", metavar="STUDY_DIR", help="output folder of 'srnomogram run'")
    u.add_argument("cohort", metavar="COHORT", help="labelled manifest of the new centre's updating sample")
    u.add_argument("-o", "--output", required=True, metavar="UPDATED", help="folder of the updated study (new)")
    u.add_argument("--alpha", type=float, default=0.05, help="level of each likelihood-ratio test (default 0.05)")
    u.add_argument("--method", choices=("auto", "none", "intercept", "recalibration", "refit"), default="auto",
                   help="'auto' (default): the closed test chooses; another value forces that update, recorded as "
                        "chosen by the user, not by the closed test")
    u.add_argument("--bootstraps", type=int, default=200,
                   help="bootstrap resamples of patients for the optimism correction, each repeating the closed test (default 200)")
    u.add_argument("--seed", type=int, default=None, help="bootstrap seed (default: the study's bootstrap seed)")
    _common(u)
    u.set_defaults(func=_update)


def _update(args):
    from ._cli import _quiet_pins
    from .update import update

    _quiet_pins(args)
    print(update(args.study, args.cohort, args.output, alpha=args.alpha, method=args.method, bootstraps=args.bootstraps,
                 seed=args.seed, jobs=args.jobs, device=args.device, force=args.force, scheduler=args.scheduler))
    return 0
