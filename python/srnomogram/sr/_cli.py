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


def _signature_defaults(target: str, names: tuple[str, ...]):
    """A help formatter that shows each option in ``names`` with its default as the signature of
    ``target`` (``"SuperResolver"`` or ``"SuperResolver.apply_manifest"``) has it, read only when help
    is printed (importing the estimator imports scikit-learn)."""

    class SignatureDefaults(argparse.HelpFormatter):
        def _get_help_string(self, action):
            help_ = action.help or ""
            if action.dest in names:
                help_ += f" (default {_signature(target)[action.dest].default})"
            return help_

    return SignatureDefaults


def _signature(target: str):
    import inspect

    from .model import SuperResolver

    return inspect.signature(SuperResolver if target == "SuperResolver" else getattr(SuperResolver, target.split(".")[1])).parameters


#: The SuperResolver parameters that ``sr train`` takes as options, and the
#: SuperResolver.apply_manifest parameters that ``sr apply`` takes. No default is written here: an
#: option not given is not passed, so the estimator's own default applies.
_ESTIMATOR_OPTIONS = ("generator", "generator_params", "iterations", "batch_size", "patch_size", "channels", "blocks", "lr",
                      "adv_weight", "noise_sigma", "degradation", "seed", "device", "amp", "image_col")
_APPLY_OPTIONS = ("out_dir", "column", "mask_column", "manifest_out", "in_place", "overwrite", "region", "roi_margin", "scheduler", "jobs")


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


def _params(args, names=_ESTIMATOR_OPTIONS) -> dict:
    """The parameters in ``names`` given on the command line (the others keep the estimator's defaults)."""
    return {k: getattr(args, k) for k in names if hasattr(args, k)}


def register(subparsers) -> None:
    _, sub = command_group(subparsers, "sr", help="self-supervised super-resolution GAN (train, apply, quality)")

    t = sub.add_parser("train", help="train the SR GAN on a manifest's own images",
                       formatter_class=_signature_defaults("SuperResolver", _ESTIMATOR_OPTIONS))
    t.add_argument("manifest", type=Path)
    t.add_argument("--out", type=Path, required=True, help="checkpoint folder (generator.pt + meta.json)")
    t.add_argument("--image-col", default=argparse.SUPPRESS, help="manifest column of the training images")
    t.add_argument("--split", choices=("train", "test", "all"), default="train",
                   help="rows to learn from when the manifest has a 'split' column (default train)")
    _model_args(t)
    t.set_defaults(func=_train)

    a = sub.add_parser("apply", help="write SR images beside the originals and a manifest with image_sr/mask_sr (MANIFEST_sr.csv)",
                       formatter_class=_signature_defaults("SuperResolver.apply_manifest", _APPLY_OPTIONS))
    a.add_argument("manifest", type=Path)
    a.add_argument("--model", type=Path, required=True, help="checkpoint folder from 'sr train'")

    def add(*flags, group=a, **kw):
        group.add_argument(*flags, default=argparse.SUPPRESS, **kw)

    add("--out-dir", type=Path, help="folder for SR files, named by case id (None: beside the originals)")
    add("--column", help="column of SR image paths: a new one, or an earlier run's SR column (any other is refused)")
    add("--mask-column", help="column of SR mask paths (with --no-resample-back): new, or an earlier run's")
    add("--no-resample-back", dest="resample_back", action="store_false", help="keep the 2x grid (2D: both axes; 3D: z)")
    where = a.add_mutually_exclusive_group()
    add("--manifest-out", group=where, type=Path, help="write the new manifest here (None: MANIFEST_sr.csv beside MANIFEST)")
    add("--in-place", group=where, action="store_true", help="overwrite MANIFEST itself (atomically)")
    add("--overwrite", action="store_true",
        help="recompute every SR file (by default one is reused only when its .json sidecar shows the same model, settings and inputs)")
    add("--region", choices=("roi", "image"),
        help="roi: run the generator on each lesion's box plus --roi-margin only (identical there to whole-image SR; "
             "cubic elsewhere); image: on whole images (figures, radiomics with normalize or filters)")
    add("--roi-margin", type=float, help="with --region roi: margin per side as a fraction of the lesion box (the CNN's margin)")
    add("--scheduler", help="Dask scheduler address to run on (None: $DASK_SCHEDULER_ADDRESS, else locally)")
    add("--jobs", type=int, help="local worker processes without a scheduler (1: this process, torch uses every core)")
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

    if getattr(args, "manifest_out", None) is not None:
        check_output_file(args.manifest_out, "--manifest-out", example="manifest_sr.csv")
    if getattr(args, "out_dir", None) is not None:
        check_output_dir(args.out_dir, "--out-dir")
    model = SuperResolver.load(args.model, device=args.device)
    if args.amp is not None:
        model.set_params(amp=args.amp)
    model.apply_manifest(args.manifest, **_params(args, (*_APPLY_OPTIONS, "resample_back")))
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
