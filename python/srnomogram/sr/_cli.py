"""``srnomogram sr train|apply|quality``: parse arguments, call :mod:`srnomogram.sr`, log what was written."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..cli import command_group, threads_arg

log = logging.getLogger(__name__)


_AMP_HELP = "bf16 autocast: auto = where bf16 is faster (CUDA with bf16, a CPU with AMX or AVX-512 BF16); bf16 = on any device; none = float32"


def _amp_arg(p):
    p.add_argument("--amp", choices=("auto", "bf16", "none"), default=None, help=_AMP_HELP + " (default: the model's own setting)")


class _EstimatorDefaults(argparse.HelpFormatter):
    """Help that shows each estimator option's default as :class:`~srnomogram.sr.SuperResolver`'s
    signature has it, read only when help is printed (importing the estimator imports scikit-learn)."""

    def _get_help_string(self, action):
        help_ = action.help or ""
        if action.dest in _ESTIMATOR_OPTIONS:
            import inspect

            from .model import SuperResolver

            default = inspect.signature(SuperResolver).parameters[action.dest].default
            help_ += f" (default {default})"
        return help_


#: The SuperResolver parameters that ``sr train`` takes as options. No default is written here: an
#: option not given is not passed, so the estimator's own default applies.
_ESTIMATOR_OPTIONS = ("generator", "generator_params", "iterations", "batch_size", "patch_size", "channels", "blocks", "lr",
                      "adv_weight", "noise_sigma", "degradation", "seed", "device", "amp", "image_col")


def _generator_param(text: str) -> tuple[str, object]:
    import json

    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"must be KEY=VALUE (e.g. levels=3), got {text!r}")
    try:
        return key.strip(), json.loads(value)
    except ValueError:
        return key.strip(), value  # a bare string


class _Collect(argparse.Action):
    """``--generator-param KEY=VALUE`` repeated: one dict."""

    def __call__(self, parser, namespace, values, option_string=None):
        key, value = values
        setattr(namespace, self.dest, {**(getattr(namespace, self.dest, None) or {}), key: value})


def _model_args(p):
    def add(*flags, **kw):
        p.add_argument(*flags, default=argparse.SUPPRESS, **kw)

    add("--generator", help="registered generator network: edsr, unet or one added with register_generator")
    add("--generator-param", dest="generator_params", type=_generator_param, action=_Collect, metavar="KEY=VALUE",
        help="a parameter of the generator itself, repeatable (unet: levels=3); JSON values")
    add("--iterations", type=int, help="training iterations")
    add("--batch-size", type=int, help="patches per iteration")
    add("--patch-size", type=int, help="square patch side in pixels, even")
    add("--channels", type=int, help="generator width")
    add("--blocks", type=int, help="generator residual blocks")
    add("--lr", type=float, help="Adam learning rate")
    add("--adv-weight", type=float, help="adversarial loss weight (0 = L1 only)")
    add("--noise-sigma", type=float, help="degradation noise SD in [0,1] units")
    add("--degradation", choices=("downsample", "blur"), help="down-sampling alone (the paper) or blurred first (SMORE)")
    add("--seed", type=int, help="seed of initialisation, patches and noise")
    add("--device", help="auto, cpu or cuda[:k]")
    add("--amp", choices=("auto", "bf16", "none"), help=_AMP_HELP)
    threads_arg(p)


def _params(args) -> dict:
    """The SuperResolver parameters given on the command line (the others keep the estimator's defaults)."""
    return {k: getattr(args, k) for k in _ESTIMATOR_OPTIONS if hasattr(args, k)}


def register(subparsers) -> None:
    _, sub = command_group(subparsers, "sr", help="self-supervised super-resolution GAN (train, apply, quality)")

    t = sub.add_parser("train", help="train the SR GAN on a manifest's own images", formatter_class=_EstimatorDefaults)
    t.add_argument("manifest", type=Path)
    t.add_argument("--out", type=Path, required=True, help="checkpoint folder (generator.pt + meta.json)")
    t.add_argument("--image-col", default=argparse.SUPPRESS, help="manifest column of the training images")
    t.add_argument("--split", choices=("train", "test", "all"), default="train",
                   help="rows to learn from when the manifest has a 'split' column (default train)")
    _model_args(t)
    t.set_defaults(func=_train)

    a = sub.add_parser("apply", help="write SR images beside the originals and a manifest with image_sr/mask_sr (MANIFEST_sr.csv)")
    a.add_argument("manifest", type=Path)
    a.add_argument("--model", type=Path, required=True, help="checkpoint folder from 'sr train'")
    a.add_argument("--out-dir", type=Path, default=None, help="folder for SR files, named by case id (default: beside the originals)")
    a.add_argument("--column", default="image_sr")
    a.add_argument("--mask-column", default="mask_sr")
    a.add_argument("--no-resample-back", action="store_true", help="keep the 2x grid (2D: both axes; 3D: z)")
    where = a.add_mutually_exclusive_group()
    where.add_argument("--manifest-out", type=Path, default=None, help="write the new manifest here (default: MANIFEST_sr.csv beside MANIFEST)")
    where.add_argument("--in-place", action="store_true", help="overwrite MANIFEST itself (atomically)")
    a.add_argument("--overwrite", action="store_true",
                   help="recompute every SR file (by default one is reused only when its .json sidecar shows the same model, settings and inputs)")
    a.add_argument("--region", choices=("roi", "image"), default="roi",
                   help="roi (default): run the generator on each lesion's box plus --roi-margin only (identical there to whole-image SR; "
                        "cubic elsewhere); image: on whole images (figures, radiomics with normalize or filters)")
    a.add_argument("--roi-margin", type=float, default=0.1, help="with --region roi: margin per side as a fraction of the lesion box (the CNN's margin; default 0.1)")
    a.add_argument("--scheduler", default=None, help="Dask scheduler address to run on (default: $DASK_SCHEDULER_ADDRESS, else locally)")
    a.add_argument("--jobs", type=int, default=1, help="local worker processes without a scheduler (default 1: this process, torch uses every core)")
    a.add_argument("--device", default="auto")
    _amp_arg(a)
    threads_arg(a)
    a.set_defaults(func=_apply)

    q = sub.add_parser("quality", help="PSNR/SSIM of SR vs nearest/linear/cubic on held-out images")
    q.add_argument("manifest", type=Path)
    q.add_argument("--model", type=Path, required=True)
    q.add_argument("--split", choices=("train", "test", "all"), default="test",
                   help="rows to evaluate when the manifest has a 'split' column (default test)")
    q.add_argument("--out", type=Path, required=True, help="CSV of per-image results; the summary goes beside it")
    q.add_argument("--figure", type=Path, default=None, help="PNG with original / cubic / SR crops of the first image")
    q.add_argument("--device", default="auto")
    q.set_defaults(func=_quality)


def _rows(df, split):
    if split != "all" and "split" in df.columns:
        return df[df["split"] == split]
    return df


def _train(args) -> int:
    from ..data import load_manifest
    from ..utils import check_output_dir
    from . import SuperResolver

    check_output_dir(args.out, "--out")
    df = _rows(load_manifest(args.manifest), args.split)
    model = SuperResolver(**_params(args))
    model.fit(df)
    model.save(args.out)
    l1 = [h["l1"] for h in model.history_]
    log.info("trained on %d images (%d planes) on %s; L1 %.4f -> %.4f; wrote %s", len(df), model.n_training_planes_,
             model.device_, l1[0], l1[-1], args.out)
    return 0


def _apply(args) -> int:
    from ..utils import check_output_dir, check_output_file
    from . import SuperResolver

    if args.manifest_out is not None:
        check_output_file(args.manifest_out, "--manifest-out", example="manifest_sr.csv")
    if args.out_dir is not None:
        check_output_dir(args.out_dir, "--out-dir")
    model = SuperResolver.load(args.model, device=args.device)
    if args.amp is not None:
        model.set_params(amp=args.amp)
    model.apply_manifest(args.manifest, out_dir=args.out_dir, column=args.column, mask_column=args.mask_column,
                              resample_back=not args.no_resample_back, manifest_out=args.manifest_out, overwrite=args.overwrite,
                              in_place=args.in_place, region=args.region, roi_margin=args.roi_margin, scheduler=args.scheduler,
                              jobs=args.jobs)
    return 0


def _quality(args) -> int:
    import SimpleITK as sitk

    from ..data import load_manifest, read_image
    from ..utils import check_output_file, write_csv_atomic
    from . import SuperResolver, quality_table, summarise

    check_output_file(args.out, "--out", inputs={"MANIFEST": args.manifest}, example="quality.csv")
    check_output_file(args.out.with_name(args.out.stem + "_summary.csv"), "--out (its _summary.csv)", inputs={"MANIFEST": args.manifest})
    if args.figure:
        check_output_file(args.figure, "--figure", example="quality.png")
    model = SuperResolver.load(args.model, device=args.device)
    df = _rows(load_manifest(args.manifest), args.split)
    sp = df["spacing"] if "spacing" in df.columns else [None] * len(df)
    images = [sitk.GetArrayFromImage(read_image(p, s)) for p, s in zip(df["image"], sp)]
    table = quality_table(model, images, ids=list(df["case_id"]))
    summ = summarise(table)
    write_csv_atomic(table, args.out)
    summary_path = args.out.with_name(args.out.stem + "_summary.csv")
    write_csv_atomic(summ.reset_index(), summary_path)
    print(summ.to_string(float_format=lambda v: f"{v:.4f}"))
    if args.figure:
        from .quality import quality_figure

        quality_figure(model, images[0], args.figure, title=str(df["case_id"].iloc[0]))
        log.info("wrote %s", args.figure)
    log.info("wrote %s and %s", args.out, summary_path)
    return 0
