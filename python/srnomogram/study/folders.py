"""Which command an output folder belongs to: its owner marker ``OUT/.srnomogram.json``.

``srnomogram run`` and ``demo`` write a study folder, ``validate`` an external validation folder
(``-o``), ``predict`` a work folder of cached stages (``--work-dir``). Each claims its folder through
:func:`claim_output`, the one place all four take the folder's lock: the first time, it writes the marker
(atomically): the folder's ``kind``, the ``command``, for validate and predict the ``study`` applied (its
path and key), the time and the srnomogram version. A command then writes only into a folder that is

* missing or empty (only a lock file or ``.DS_Store`` in it): it claims it;
* marked as its own kind: ``run``/``demo`` resume any study folder (a rerun with changed settings: the
  stage cache recomputes what changed); ``validate`` and ``predict`` resume only their own kind's
  folder *of the same applied study* (same study folder path, or the same frozen study key);
* unmarked but recognisably its own kind, written before markers existed (see :func:`legacy_kind`):
  it is adopted (the marker is written) under the same rules.

Anything else (another kind's folder, another study's validation or work folder, a non-empty folder
srnomogram did not write) is refused in one line naming the folder, what wrote it and what to do,
before anything is written there: a command never overwrites what it did not write.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import OutputOwnerError
from ..utils import LOCK_NAME, atomic_path, excerpt, output_lock

__all__ = ["MARKER", "Owner", "claim_output", "folder_owner", "legacy_kind"]

#: The owner marker in every output folder of run, demo, validate and predict.
MARKER = ".srnomogram.json"
#: Files that leave a folder "empty" for :func:`claim_output`: a lock file (an earlier refused or killed
#: command's), and what file browsers leave.
IGNORED = {LOCK_NAME, ".DS_Store", "Thumbs.db", "desktop.ini"}

KINDS = {"study": "a study folder", "validate": "an external validation folder", "predict": "a prediction work folder"}
#: What each kind's own stages are called under ``stages/`` (legacy recognition of apply folders).
_APPLY_ONLY = "statistics"


@dataclass(frozen=True)
class Owner:
    """What claims an output folder.

    Parameters
    ----------
    kind : {"study", "validate", "predict"}
        The folder's kind.
    command : str
        The command (``"run"``, ``"demo"``, ``"validate"``, ``"predict"``).
    study, study_key : str, optional
        For ``validate`` and ``predict``: the applied study's folder (resolved) and its frozen key
        (:attr:`srnomogram.study.external.FinishedStudy.key`).
    option : str
        The option that chose the folder, for messages (``"-o/--output"``, ``"--work-dir"``).
    """

    kind: str
    command: str
    study: str | None = None
    study_key: str | None = None
    option: str = "-o/--output"

    def record(self) -> dict:
        from .. import __version__

        rec = {"kind": self.kind, "command": self.command, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "srnomogram": __version__}
        if self.study is not None:
            rec.update(study=self.study, study_key=self.study_key)
        return rec


def _entries(folder: Path) -> list[str]:
    try:
        return [n for n in os.listdir(folder) if n not in IGNORED]
    except FileNotFoundError:
        return []


def folder_owner(folder) -> dict | None:
    """The owner record of ``folder``: its marker, or for an unmarked srnomogram folder of before markers the
    record :func:`legacy_kind` infers (``"legacy": True``); None for a missing or empty folder.

    Raises :class:`~srnomogram.errors.OutputOwnerError` for a non-empty folder that srnomogram did not
    recognisably write, or whose marker is unreadable.
    """
    folder = Path(folder)
    names = _entries(folder)
    if not names:
        return None
    if MARKER in names:
        try:
            rec = json.loads((folder / MARKER).read_text(encoding="utf-8"))
            if not isinstance(rec, dict) or rec.get("kind") not in KINDS:
                raise ValueError
            return rec
        except (OSError, ValueError, UnicodeDecodeError):
            raise OutputOwnerError(f"Output folder {folder} has an unreadable owner marker {MARKER}; srnomogram does not "
                                   "write into a folder it cannot tell it wrote: choose a new or empty folder.") from None
    legacy = legacy_kind(folder)
    if legacy is None:
        raise OutputOwnerError(f"Output folder {folder} is not empty and srnomogram did not write it (no {MARKER}, e.g. "
                               f"{excerpt(sorted(names)[0], 60)}); so that its files are kept, choose a new or empty folder.")
    return legacy


def legacy_kind(folder) -> dict | None:
    """The kind of an unmarked folder written by srnomogram before owner markers, or None.

    * a study: ``resolved_config.yaml`` and ``stages/`` (what :func:`~srnomogram.study.external.load_study`
      reads; a demo folder has its ``cohort/`` beside them);
    * an external validation: ``stages/statistics/`` and ``board/``, no ``resolved_config.yaml``; its study
      is the one every pin of its board records (``study``, ``study_key``), None when unreadable;
    * a prediction work folder: only ``stages/`` (and ``cache/``), with no ``statistics`` stage; its study
      is unknown (its stages' keys include it, so another study's stages are recomputed, not mixed).

    Every other file name at the top level makes the folder unrecognised (None).
    """
    folder = Path(folder)
    names = set(_entries(folder))
    stages = folder / "stages"
    if not stages.is_dir():
        return None
    if (folder / "resolved_config.yaml").is_file():
        return {"kind": "study", "command": "run", "legacy": True}
    if (stages / _APPLY_ONLY).is_dir() and (folder / "board").is_dir():
        study, key = _board_study(folder / "board")
        return {"kind": "validate", "command": "validate", "study": study, "study_key": key, "legacy": True}
    if names <= {"stages", "cache"} and not (stages / _APPLY_ONLY).exists():
        return {"kind": "predict", "command": "predict", "study": None, "study_key": None, "legacy": True}
    return None


def _board_study(board: Path) -> tuple[str | None, str | None]:
    """The applied study an external validation's board records in its pins' metadata."""
    from ..board import list_pins, pin_meta

    with contextlib.suppress(Exception):  # a board we cannot read says nothing about its study
        for name in list_pins(board):
            meta = pin_meta(board, name)
            if meta.get("study_key"):
                return meta.get("study"), meta["study_key"]
    return None, None


def _refusal(folder: Path, owner: Owner, rec: dict) -> str | None:
    """Why ``owner`` may not write into ``folder`` owned by ``rec`` (None: it may)."""
    of = f" of the study {rec['study']}" if rec.get("study") else ""
    when = f" at {rec['created']}" if rec.get("created") else " (before owner markers)" if rec.get("legacy") else ""
    found = f"{KINDS[rec['kind']]}{of}, written by 'srnomogram {rec.get('command', rec['kind'])}'{when}"
    remedy = f"choose a new or empty folder for {owner.option}, so that its files are kept."
    if rec["kind"] != owner.kind:
        return f"Output folder {folder} is {found}; 'srnomogram {owner.command}' does not write into it: {remedy}"
    if owner.kind == "study":
        return None
    same = (rec.get("study") is not None and rec.get("study") == owner.study) or (
        rec.get("study_key") is not None and rec.get("study_key") == owner.study_key)
    if same or (rec.get("legacy") and rec.get("study") is None and owner.kind == "predict"):
        return None
    return f"Output folder {folder} is {found}, not of the study {owner.study} applied now: {remedy}"


def check_owner(folder, owner: Owner) -> dict | None:
    """Raise :class:`~srnomogram.errors.OutputOwnerError` when ``owner`` may not write into ``folder``; nothing is
    written. Returns the folder's owner record (None for a missing or empty folder)."""
    folder = Path(folder)
    rec = folder_owner(folder)
    if rec is not None:
        why = _refusal(folder, owner, rec)
        if why:
            raise OutputOwnerError(why)
    return rec


@contextlib.contextmanager
def claim_output(folder, owner: Owner):
    """Check that ``owner`` may write into ``folder`` (:func:`check_owner`), hold its lock
    (:func:`srnomogram.utils.output_lock`) and, the first time, write its marker; yield the folder.

    The check runs before the lock file is created (a refused folder is left byte for byte as it was)
    and again under the lock (a command that claimed it meanwhile). Re-entrant, as the lock: the demo
    claims its folder, then the study it runs claims the same folder.
    """
    folder = Path(folder).resolve()
    check_owner(folder, owner)
    with output_lock(folder, owner.command):
        rec = check_owner(folder, owner)
        if rec is None or rec.get("legacy"):
            write_marker(folder, owner)
        yield folder


def write_marker(folder, owner: Owner) -> Path:
    """Write ``folder/.srnomogram.json`` for ``owner`` (atomically)."""
    path = Path(folder) / MARKER
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(owner.record(), indent=1), encoding="utf-8")
    return path
