"""``srnomogram cohort ...``: import, split, check and synthesise cohorts."""

from __future__ import annotations

import argparse
import logging

from ..cli import command_group

log = logging.getLogger(__name__)


def _import_breast(args):
    from ..utils import check_output_file
    from .importers import import_breast_lesions_usg

    check_output_file(args.output, "-o/--output", example="manifest.csv")
    import_breast_lesions_usg(args.src, args.output)


def _import_bus_bra(args):
    from ..utils import check_output_file
    from .importers import import_bus_bra

    check_output_file(args.output, "-o/--output", example="manifest.csv")
    import_bus_bra(args.src, args.output)


def _import_folder(args):
    from ..utils import check_output_file
    from .importers import import_folder

    check_output_file(args.output, "-o/--output", example="manifest.csv")
    import_folder(args.src, args.output, spacing=args.spacing, patient_pattern=args.patient_pattern)


class _Centre(argparse.Action):
    """--centre and --centre-from append to one list, so that their order pairs them with the manifests."""

    def __call__(self, parser, namespace, values, option_string=None):
        spec = list(getattr(namespace, self.dest) or [])
        spec.append((self.const, values))
        setattr(namespace, self.dest, spec)


def _combine(args):
    from ..errors import InputError
    from ..utils import check_output_file
    from .combine import combine_manifests

    check_output_file(args.output, "-o/--output", inputs={f"MANIFEST {m}": m for m in args.manifests}, example="combined.csv")
    spec, n = args.centre_spec or [], len(args.manifests)
    if len(spec) == 1 and spec[0][0] == "column":
        spec = spec * n  # one --centre-from for every manifest
    if spec and len(spec) != n:
        raise InputError(f"Give one --centre NAME or --centre-from COLUMN per manifest, in their order: {n} manifests, {len(spec)} given.")
    combine_manifests(
        args.manifests, args.output,
        centres=[v if k == "name" else None for k, v in spec] if spec else None,
        centre_from=[v if k == "column" else None for k, v in spec] if spec else None,
        drop=args.drop or (), prefix_case_ids=args.prefix_case_ids,
    )


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
        "bus-bra",
        help="BUS-BRA: bus_data.csv + Images/ + Masks/, four scanners, the authors' folds",
        description="Import the BUS-BRA collection: one row per image, label from Pathology, patient_id from Case, centre from "
                    "Device (the scanner), the authors' folds as fold5/fold10, sizes read from the PNGs. The release gives no "
                    "pixel size: spacing stays empty and shape features are in pixels.",
    )
    p.add_argument("src", metavar="DIR", help="the collection folder (bus_data.csv, Images/, Masks/, the fold CSVs)")
    p.add_argument("-o", "--output", required=True, metavar="MANIFEST", help="manifest CSV to write")
    p.set_defaults(func=_import_bus_bra)

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

    p = sub.add_parser(
        "combine",
        help="stack the manifests of several cohorts into one, with a centre column",
        description="Combine cohort manifests into one multi-centre manifest: a centre column, patient_id namespaced as "
                    "<centre>:<patient>, paths rewritten relative to the output. Clashing case ids, a centre in two manifests, "
                    "a patient at two centres and a column with numbers in one manifest and text in another are refused.",
    )
    p.add_argument("manifests", nargs="+", metavar="MANIFEST", help="the manifests to combine")
    p.add_argument("-o", "--output", required=True, metavar="MANIFEST", help="combined manifest CSV to write")
    p.add_argument("--centre", dest="centre_spec", action=_Centre, const="name", metavar="NAME",
                   help="the centre of all rows of the next manifest (give one --centre or --centre-from per manifest, in order)")
    p.add_argument("--centre-from", dest="centre_spec", action=_Centre, const="column", metavar="COLUMN",
                   help="the column holding each row's centre in the next manifest, e.g. BUS-BRA's centre (its scanner); "
                        "given once, for every manifest (default without --centre: centre)")
    p.add_argument("--drop", action="append", metavar="COLUMN", help="leave this column out of every manifest (repeatable)")
    p.add_argument("--prefix-case-ids", action="store_true", help="make every case id <centre>_<case_id> (for clashing ids)")
    p.set_defaults(func=_combine)

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
