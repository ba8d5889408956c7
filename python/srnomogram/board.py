"""The study's board: versioned pins (pins-python) with provenance in every pin's metadata.

Every stage of a study writes its results here, and the R side reads the same files, so the board
is the only thing that passes between the languages apart from rpy2 calls. The conventions follow
pins' own advice for a board shared by Python and R:

* always ``pins.board_folder(path, versioned=True)`` (the Python and R defaults differ);
* tables as CSV, which R on Debian reads without extra packages (no parquet reader there);
* provenance under ``metadata=``: the srnomogram version, the git SHA of the source tree when it is
  one, the Python/package versions (NumPy, pandas, scikit-learn, PyTorch, PyRadiomics, ...), and
  whatever the caller adds (seed, config hash, input hashes, parameters).

Pickles
-------
Pickled objects (``joblib`` pins) run code when they are read, so they are written only when a caller
asks for them (``write_object``; the study's ``board.pickle_models``, off by default) and read only
with ``allow_pickle=True``, from a board with this module's marker file whose folder and pin files
belong to the current user and are writable by no one else. That check only refuses boards other
users can write to: a board you copied, downloaded or untarred belongs to you and passes it, so it
does not make a pickle from someone else safe. Only unpickle a board you produced yourself. The
study keeps its fitted models without pickle (skops files and state_dicts with SHA-256, see
:mod:`srnomogram.radiomics.persist`); the pickle pins are a convenience for your own session.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import os
import platform
import re
import stat
import subprocess
from importlib import metadata as _metadata
from pathlib import Path

import pandas as pd

from .errors import InputError, SrnomogramError

__all__ = [
    "BoardError",
    "write_pin",
    "read_pin",
    "verify_pin",
    "write_object",
    "read_object",
    "pin_meta",
    "pin_versions",
    "list_pins",
    "provenance",
    "SCORE_COLUMNS",
    "scores_pin_name",
    "model_scores",
]

MARKER = "_srnomogram_board.json"
PIN_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_PICKLE_TYPES = {"joblib", "pickle"}
_INDEX_KEY = "srnomogram_index"
_TRACKED_PACKAGES = (
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "torch",
    "torchvision",
    "pyradiomics",
    "SimpleITK",
    "pins",
    "rpy2",
)


class BoardError(SrnomogramError):
    """A pin is missing, of the wrong type, edited after it was written, or may not be read (pickles from a
    foreign board)."""


# ----------------------------------------------------------------------------------- provenance
@functools.lru_cache(maxsize=1)
def _git_sha() -> str | None:
    src = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(src), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    sha = out.stdout.strip()
    return sha if out.returncode == 0 and re.fullmatch(r"[0-9a-f]{40}", sha) else None


@functools.lru_cache(maxsize=1)
def _package_versions() -> dict:
    versions = {"python": platform.python_version()}
    for name in _TRACKED_PACKAGES:
        try:
            versions[name] = _metadata.version(name)
        except _metadata.PackageNotFoundError:
            continue
    return versions


def provenance() -> dict:
    """Versions and source of the software that wrote a pin.

    Returns
    -------
    dict
        ``srnomogram_version``, ``git_sha`` (None outside a git checkout), ``versions``
        (Python and the installed versions of the numerical packages, read from package
        metadata, so nothing heavy is imported) and ``pyradiomics_version``.
    """
    from . import __version__

    versions = _package_versions()
    return {
        "srnomogram_version": __version__,
        "git_sha": _git_sha(),
        "versions": dict(versions),
        "pyradiomics_version": versions.get("pyradiomics"),
    }


def _plain(value):
    """Make metadata YAML-safe: NumPy scalars to Python, paths and tuples to str/list."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        return value.item()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


# ----------------------------------------------------------------------------------- the board
def _check_name(name, func):
    if not isinstance(name, str) or not PIN_NAME.match(name):
        raise InputError(
            f"The 'name' parameter of {func} must be a snake_case noun such as 'radiomics_features'. "
            f"Got {name!r} instead."
        )


def _board(board_dir, allow_pickle_read=False, create=False):
    import pins

    path = Path(board_dir)
    if create:
        path.mkdir(parents=True, exist_ok=True)
        marker = path / MARKER
        if not marker.exists():
            marker.write_text(json.dumps({"created_by": "srnomogram", "uid": os.getuid()}) + "\n", encoding="utf-8")
    elif not path.is_dir():
        raise BoardError(f"Board folder {path} not found. Run the study first ('srnomogram run study.yaml').")
    return pins.board_folder(str(path), versioned=True, allow_pickle_read=allow_pickle_read)


def _meta_or_raise(board, board_dir, name, version):
    try:
        return board.pin_meta(name, version=version)
    except Exception as exc:  # pins raises PinsError/FileNotFoundError subclasses
        what = f"version {version!r} of pin {name!r}" if version else f"pin {name!r}"
        raise BoardError(f"{what} not found on board {board_dir} ({type(exc).__name__}).") from None


@contextlib.contextmanager
def _quiet():
    """pins prints 'Writing pin: ...' on every write; keep the study's output readable."""
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        yield


def _next_created(board, name):
    """A creation time later than the pin's latest version.

    pins names versions by creation second plus a short hash and reads the "latest" by sorting
    them, so two versions written within one second could come back in the wrong order.
    """
    import datetime as _dt

    now = _dt.datetime.now().replace(microsecond=0)
    try:
        latest = max(board.pin_versions(name)["created"])
    except Exception:  # no such pin yet
        return now
    return max(now, latest.to_pydatetime().replace(microsecond=0) + _dt.timedelta(seconds=1))


def write_pin(board_dir, name, df, metadata=None, title=None, description=None) -> str:
    """Write a DataFrame as a new version of a CSV pin, with provenance in its metadata.

    Parameters
    ----------
    board_dir : path-like
        The board folder (created if absent).
    name : str
        snake_case pin name, e.g. ``"radiomics_features"``.
    df : pandas.DataFrame
        The table. A non-default index is kept: it is written as leading column(s) and restored
        by :func:`read_pin`.
    metadata : dict, optional
        Caller's metadata (seed, parameters, ``config_hash``, ``input_hashes``, ...); merged over
        :func:`provenance`.
    title, description : str, optional
        Shown by ``pin_meta`` in Python and R.

    Returns
    -------
    str
        The pin version written (or the latest version when the content did not change: pins
        does not store an identical copy).
    """
    _check_name(name, "write_pin")
    if not isinstance(df, pd.DataFrame):
        raise InputError(f"The 'df' parameter of write_pin must be a pandas DataFrame. Got {type(df).__name__} instead.")
    meta = provenance()
    meta.update(_plain(dict(metadata or {})))
    index_names = None
    if not isinstance(df.index, pd.RangeIndex) or df.index.name is not None:
        index_names = [n if n is not None else f"level_{i}" for i, n in enumerate(df.index.names)]
        if len(index_names) == 1 and df.index.names[0] is None:
            index_names = ["index"]
        df = df.rename_axis(index_names).reset_index()
    meta[_INDEX_KEY] = index_names
    board = _board(board_dir, create=True)
    # pins writes the file with DataFrame.to_csv(path, index=False): these bytes (tests/python/test_board.py)
    meta["content_sha256"] = hashlib.sha256(df.to_csv(index=False).encode("utf-8")).hexdigest()
    with _quiet():
        m = board.pin_write(
            df,
            name=name,
            type="csv",
            title=title or name,
            description=description,
            metadata=meta,
            created=_next_created(board, name),
            force_identical_write=_latest_edited(board, board_dir, name),
        )
    return m.version.version


SCORE_COLUMNS = ("case_id", "split", "label", "score")


def scores_pin_name(model_id: str) -> str:
    """Pin of one model's per-lesion scores: ``scores_<model_id>``, e.g. ``scores_sr_mobilenet_v2``.

    The study (``srnomogram run``) and the area commands (``srnomogram deep train --board``,
    ``srnomogram radiomics fit --board``) write the same pin, in the schema of :func:`model_scores`.
    """
    name = f"scores_{model_id}"
    _check_name(name, "scores_pin_name")
    return name


def model_scores(scores: pd.DataFrame, model_id: str) -> pd.DataFrame:
    """One model's scores in the ``scores_<model_id>`` pin schema.

    Parameters
    ----------
    scores : pandas.DataFrame
        ``case_id``, ``split``, ``label`` and a column named ``model_id`` (malignant probability),
        as the study's stages and :func:`~srnomogram.radiomics.fit_or_sr_models` write them.
    model_id : str
        e.g. ``or_lr``, ``sr_mobilenet_v2``.

    Returns
    -------
    pandas.DataFrame
        :data:`SCORE_COLUMNS`: ``case_id`` (str), ``split``, ``label`` (int), ``score`` (float).
    """
    missing = [c for c in ("case_id", "split", "label", model_id) if c not in scores.columns]
    if missing:
        raise InputError(f"The scores table has no column {missing[0]!r}; it needs case_id, split, label and {model_id!r}.")
    out = scores[["case_id", "split", "label", model_id]].rename(columns={model_id: "score"}).reset_index(drop=True)
    return out.astype({"case_id": str, "label": int, "score": float})


def read_pin(board_dir, name, version=None, allow_pickle=False):
    """Read a pin: a DataFrame for CSV pins (index restored), an object for pickles when allowed.

    Parameters
    ----------
    board_dir : path-like
        The board folder.
    name : str
        Pin name.
    version : str, optional
        A version from :func:`pin_versions`; the latest by default.
    allow_pickle : bool
        Needed for ``joblib`` pins, which are then read only from a board the current user created
        (see the module notes). Default False.

    Raises
    ------
    BoardError
        Missing pin or version; a CSV whose bytes do not match the SHA-256 recorded when it was
        written (``content_sha256``: the pin was edited on the board, see :func:`verify_pin`); a pickle
        pin without ``allow_pickle=True``; a pickle pin on a board not created by the current user.
    """
    _check_name(name, "read_pin")
    board = _board(board_dir)
    meta = _meta_or_raise(board, board_dir, name, version)
    if meta.type in _PICKLE_TYPES:
        return read_object(board_dir, name, version=version, allow_pickle=allow_pickle)
    if meta.type != "csv":
        raise BoardError(f"Pin {name!r} on board {board_dir} has type {meta.type!r}; read_pin reads 'csv' pins.")
    path = _checked_file(board_dir, name, meta)
    # Read the CSV ourselves so identifiers stay strings ("001" is not 1).
    index_names = (meta.user or {}).get(_INDEX_KEY) or []
    str_cols = {c: str for c in {*index_names, "case_id"}}
    df = pd.read_csv(path, dtype=str_cols)
    if index_names:
        df = df.set_index(index_names if len(index_names) > 1 else index_names[0])
    return df


def write_file_pin(board_dir, name, path, metadata=None, title=None) -> str:
    """Write a file (e.g. Grad-CAM maps as ``.npz``) as a new version of a ``file`` pin.

    For data that is not a table: the file is copied unchanged, with provenance in the metadata
    and its SHA-256 in ``content_sha256``. R's ``read_board`` does not read file pins.
    """
    _check_name(name, "write_file_pin")
    path = Path(path)
    if not path.is_file():
        raise InputError(f"The 'path' parameter of write_file_pin must be an existing file. Got {str(path)!r} instead.")
    from .utils import file_sha256

    meta = provenance()
    meta.update(_plain(dict(metadata or {})))
    meta["content_sha256"] = file_sha256(path)
    board = _board(board_dir, create=True)
    with _quiet():
        if _latest_edited(board, board_dir, name):
            # pin_upload has no force_identical_write; its own store call (pins >= 0.8) does
            m = board._pin_store(str(path), name, type="file", title=title or name, metadata=meta,
                                 created=_next_created(board, name), force_identical_write=True)
        else:
            m = board.pin_upload(str(path), name=name, title=title or name, metadata=meta)
    return m.version.version


def read_file_pin(board_dir, name, version=None) -> Path:
    """The path of a ``file`` pin's file on the board (checked against its ``content_sha256``)."""
    _check_name(name, "read_file_pin")
    board = _board(board_dir)
    meta = _meta_or_raise(board, board_dir, name, version)
    if meta.type != "file":
        raise BoardError(f"Pin {name!r} on board {board_dir} has type {meta.type!r}; read_file_pin reads 'file' pins.")
    return _checked_file(board_dir, name, meta)


# ----------------------------------------------------------------------------------- verification
# file -> (its stat signature, SHA-256): one report reads a pin several times (tables, figures,
# records) and hashes it once. The signature holds st_ctime_ns, which every write changes and no
# user call can set back, so an edit is never served from here.
_DIGESTS: dict[str, tuple[tuple, str]] = {}


def _digest(path: Path) -> str:
    from .utils import file_sha256

    st = path.stat()
    sig = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    hit = _DIGESTS.get(str(path))
    if hit is not None and hit[0] == sig:
        return hit[1]
    sha = file_sha256(path)
    _DIGESTS[str(path)] = (sig, sha)
    return sha


def _matches(path: Path, want: str) -> bool:
    """True when ``path``'s bytes have the recorded SHA-256 (or, for CSV pins written before it was the
    plain SHA-256, the length-prefixed :func:`srnomogram.utils.hash_bytes` of the same bytes)."""
    if _digest(path) == want:
        return True
    from .utils import hash_bytes

    return path.suffix == ".csv" and hash_bytes(path.read_bytes()) == want


def _edited_message(board_dir, name, meta, path: Path) -> str:
    stage = (meta.user or {}).get("stage")
    remedy = (f"rerun the stage that writes it with --force {stage} (srnomogram run STUDY.yaml --force {stage}, "
              f"or the same validate command with --force {stage})" if stage else "rewrite it with the command that wrote it")
    return (f"Pin {name!r} on board {board_dir} was changed after it was written: {path.name} (version "
            f"{meta.version.version}) does not match its SHA-256 recorded then, so it is not used; {remedy}.")


def _checked_file(board_dir, name, meta) -> Path:
    """The pin version's file, after checking its bytes against ``content_sha256`` (BoardError if edited)."""
    files = [meta.file] if isinstance(meta.file, str) else list(meta.file)
    path = Path(board_dir) / name / meta.version.version / files[0]
    if not path.is_file():
        raise BoardError(f"Pin {name!r} on board {board_dir}: its file {path.name} of version {meta.version.version} is missing; "
                         "rewrite the pin with the command that wrote it.")
    want = (meta.user or {}).get("content_sha256")
    if want and not _matches(path, want):
        raise BoardError(_edited_message(board_dir, name, meta, path))
    return path


def verify_pin(board_dir, name, version=None) -> dict:
    """Check a pin's file against the SHA-256 recorded when it was written; return its metadata.

    :func:`read_pin` and :func:`read_file_pin` check every read the same way; the study's publisher
    calls this before it reuses a pin of a cached stage, so a pin edited on the board (a table's AUC
    changed by hand) is refused instead of reaching ``tables/`` and the report.

    Raises
    ------
    BoardError
        The file differs from its record; the message names the pin, the board and the stage to
        rerun with ``--force``. Missing pin or version.
    """
    _check_name(name, "verify_pin")
    board = _board(board_dir)
    meta = _meta_or_raise(board, board_dir, name, version)
    if meta.type not in _PICKLE_TYPES:  # pickles record no content hash
        _checked_file(board_dir, name, meta)
    return pin_meta(board_dir, name, version=meta.version.version)


def _latest_edited(board, board_dir, name) -> bool:
    """True when the pin's latest version no longer matches its record: pins would then keep the edited
    file as "identical" to a rewrite of the same table (it compares the recorded hashes), so the writers
    force a new version."""
    try:
        if not board.pin_exists(name):
            return False
        meta = board.pin_meta(name)
        if meta.type in _PICKLE_TYPES:
            return False
        _checked_file(board_dir, name, meta)
    except BoardError:
        return True
    except Exception:  # an unreadable version: pins' own write reports what is wrong
        return False
    return False


def pin_meta(board_dir, name, version=None) -> dict:
    """The user metadata of a pin (provenance, seed, parameters, hashes) plus its version."""
    _check_name(name, "pin_meta")
    board = _board(board_dir)
    meta = _meta_or_raise(board, board_dir, name, version)
    out = dict(meta.user or {})
    out["pin_version"] = meta.version.version
    out["pin_type"] = meta.type
    out["pin_title"] = meta.title
    return out


def pin_versions(board_dir, name) -> list[str]:
    """Versions of a pin, oldest first."""
    _check_name(name, "pin_versions")
    board = _board(board_dir)
    try:
        v = board.pin_versions(name)
    except Exception:
        raise BoardError(f"pin {name!r} not found on board {board_dir}.") from None
    return list(v["version"])


def list_pins(board_dir) -> list[str]:
    """Names of the pins on a board (not this module's marker file, which ``pin_list`` also lists)."""
    return sorted(n for n in _board(board_dir).pin_list() if n != MARKER)


# ----------------------------------------------------------------------------------- pickles
def _owned_by_me(path: Path) -> bool:
    st = path.stat()
    return st.st_uid == os.getuid() and not (st.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def write_object(board_dir, name, obj, metadata=None, title=None) -> str:
    """Pickle a fitted object (e.g. a scikit-learn pipeline) as a ``joblib`` pin.

    Only call this where the user asked for pickles (the study's ``board.pickle_models``);
    tables always go through :func:`write_pin`.
    """
    _check_name(name, "write_object")
    meta = provenance()
    meta.update(_plain(dict(metadata or {})))
    board = _board(board_dir, create=True)
    with _quiet():
        m = board.pin_write(
            obj, name=name, type="joblib", title=title or name, metadata=meta, created=_next_created(board, name)
        )
    return m.version.version


def read_object(board_dir, name, version=None, allow_pickle=False):
    """Unpickle a ``joblib`` pin: only with ``allow_pickle=True`` and only from the user's own board."""
    _check_name(name, "read_object")
    if not allow_pickle:
        raise BoardError(
            f"Pin {name!r} is a pickle; reading it runs code from the file. "
            "Pass allow_pickle=True, and only for a board you created."
        )
    path = Path(board_dir)
    board = _board(path, allow_pickle_read=True)
    meta = _meta_or_raise(board, board_dir, name, version)
    if meta.type not in _PICKLE_TYPES:
        raise BoardError(f"Pin {name!r} on board {board_dir} has type {meta.type!r}, not a pickle.")
    pin_dir = path / name / meta.version.version
    files = [path, path / name, pin_dir, *pin_dir.iterdir()]
    if not (path / MARKER).is_file() or not all(_owned_by_me(p) for p in files):
        raise BoardError(
            f"Board {board_dir} was not created by the current user (or is writable by others); "
            f"its pickle pin {name!r} will not be read. Refit the model on your own board."
        )
    return board.pin_read(name, version=version)
