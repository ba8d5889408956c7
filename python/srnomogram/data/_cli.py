"""``srnomogram cohort ...``: import, split, check and synthesise cohorts."""

from __future__ import annotations

import logging

from ..cli import command_group

log = logging.getLogger(__name__)


def _import_breast(args):
    from ..utils import check_output_file
    from .importers import import_breast_lesions_usg

    check_output_file(args.output, "-o/--output", example="manifest.csv")
    import_breast_lesions_usg(args.src, args.output)


def _import_folder(args):
    from ..utils import check_output_file
    from .importers import import_folder

    check_output_file(args.output, "-o/--output", example="manifest.csv")
    import_folder(args.src, args.output, spacing=args.spacing, patient_pattern=args.patient_pattern)


def _split(args):
    from ..utils import check_output_file
    from .split import split_manifest

    if args.output is not None:  # writing into MANIFEST itself is this command's default, so no input check
        check_output_file(args.output, "-o/--output", example="manifest.csv")
    split_manifest(args.manifest, test_size=args.test_size, seed=args.seed, output=args.output)


def _demo(args):
    from ..utils import check_output_dir
    from .demo import demo_cohort

    check_output_dir(args.out, "OUT")
    demo_cohort(args.out, n=args.n, seed=args.seed, n_volumes=args.volumes, lesion_sizes=args.lesion_sizes,
                second_lesion_share=args.second_lesion_share)


def _validate(args):
    from .check import check_cohort

    s = check_cohort(args.manifest, image_col=args.image_col, mask_col=args.mask_col)
    split = ", ".join(f"{k} {v}" for k, v in sorted(s["by_split"].items())) or "no split column"
    print(
        f"{args.manifest}: {s['n']} lesion{'s' if s['n'] != 1 else ''}, {s['by_label'].get(0, 0)} benign / {s['by_label'].get(1, 0)} malignant; "
        f"{split}; {'/'.join(f'{d}D' for d in sorted(s['dims']))} images; every image and mask read and checked."
    )


def register(subparsers) -> None:
    """Add the ``cohort`` command group."""
    _, sub = command_group(subparsers, "cohort", help="import, split, check or synthesise a cohort manifest", description="Cohort manifests: one CSV row per lesion (case_id, image, mask, label, spacing, split, clinical columns).")
    _, isub = command_group(sub, "import", help="build a manifest from a public dataset layout", description="Build a manifest from a dataset layout.", metavar="LAYOUT")

    p = isub.add_parser(
        "breast-lesions-usg",
        help="Breast-Lesions-USG (BrEaST): xlsx sheet + images/caseNNN(_tumor).png",
        description="Import the Breast-Lesions-USG collection: label from Classification, normals and cases without a tumour mask excluded, spacing from Pixel_size, max_diameter_cm from the mask.",
    )
    p.add_argument("src", metavar="DIR", help="the collection folder (xlsx sheet and images/)")
    p.add_argument("-o", "--output", required=True, metavar="MANIFEST", help="manifest CSV to write")
    p.set_defaults(func=_import_breast)

    p = isub.add_parser(
        "folder",
        help="benign/ and malignant/ folders with <name>_mask.png beside each image",
        description="Import benign/ + malignant/ folders; <name>_mask.png (and <name>_mask_1.png, ...) are the masks of <name>.png and are merged.",
    )
    p.add_argument("src", metavar="DIR", help="folder holding benign/ and malignant/")
    p.add_argument("-o", "--output", required=True, metavar="MANIFEST", help="manifest CSV to write")
    p.add_argument("--spacing", type=float, default=None, help="pixel spacing in mm for every image (default: unknown)")
    p.add_argument("--patient-pattern", default=None, metavar="REGEX",
                   help="regular expression on the image name whose group 'patient' (or first group) is the patient id, "
                        "e.g. '^(bus_[0-9]+)'; written as patient_id so that a patient's images stay together")
    p.set_defaults(func=_import_folder)

    p = sub.add_parser("split", help="write a stratified train/test split into a manifest", description="Stratified train/test split (same result in Python and R for the same seed), written into the manifest's split column.")
    p.add_argument("manifest", metavar="MANIFEST")
    p.add_argument("--seed", type=int, default=0, help="split seed (default 0)")
    p.add_argument("--test-size", type=float, default=0.2, help="fraction of each class in the test set (default 0.2)")
    p.add_argument("-o", "--output", default=None, metavar="MANIFEST", help="write here instead of overwriting MANIFEST")
    p.set_defaults(func=_split)

    p = sub.add_parser("demo", help="synthesise a demo cohort (images, masks, manifest, 3D volumes)", description="Synthesise a deterministic B-mode-like demo cohort.")
    p.add_argument("out", metavar="OUT", help="output folder")
    p.add_argument("--n", type=int, default=120, help="number of 2D lesions (default 120)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--volumes", type=int, default=4, help="number of small 3D volumes (default 4)")
    p.add_argument(
        "--lesion-sizes",
        choices=("paper", "breast"),
        default="paper",
        help="paper: small masks on 256x256 images (default); breast: mask areas spread like the BrEaST cohort's, on >= 512x512 images",
    )
    p.add_argument("--second-lesion-share", type=float, default=0.0, metavar="SHARE",
                   help="share of patients with a second lesion (default 0: one lesion per patient, no patient_id column)")
    p.set_defaults(func=_demo)

    p = sub.add_parser("validate", help="read and check every image and mask of a manifest", description="Load a manifest, read every image and mask, check sizes, spacings and masks; print a summary.")
    p.add_argument("manifest", metavar="MANIFEST")
    p.add_argument("--image-col", default="image", help="image column to check (default image)")
    p.add_argument("--mask-col", default="mask", help="mask column to check (default mask)")
    p.set_defaults(func=_validate)
