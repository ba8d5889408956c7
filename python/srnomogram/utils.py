"""Small shared helpers: seeding, atomic writes, safe file names, content hashes. No heavy imports at module level."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from pathlib import Path


def current_umask() -> int:
    """The process's umask, read without changing it where the OS allows (Linux ``/proc``)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: the classic set-and-restore
    os.umask(mask)
    return mask


def honour_umask(path: str | os.PathLike, directory: bool = False) -> None:
    """Give ``path`` the mode a plain ``open()``/``mkdir()`` would have (0666/0777 less the umask).

    ``tempfile.mkstemp``/``mkdtemp`` create 0600/0700 for privacy while a file is being written; an
    output renamed into place from them keeps that mode unless it is set back.
    """
    os.chmod(path, (0o777 if directory else 0o666) & ~current_umask())


def fsync_path(path: str | os.PathLike, directory: bool = False) -> None:
    """Flush a file's (or a folder's entries') data to disk; a no-op where the OS cannot (folders on Windows)."""
    if directory:
        flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    else:  # Windows flushes only handles open for writing
        flags = os.O_RDWR if os.name == "nt" else os.O_RDONLY
    try:
        fd = os.open(path, flags)
    except OSError:
        if directory:
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not directory:
            raise
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None):
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    Nothing is left half-written: if the block raises, the temporary file is removed and an
    existing ``path`` is untouched. The file gets the mode the umask gives a new file (not
    ``mkstemp``'s 0600) and is fsync-ed before the rename, and the folder after it, so a crash or
    power loss leaves the old file or the complete new one. An :class:`OSError` of the write (a full
    disk, a read-only folder) names ``path``, not the temporary file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix or path.suffix)
    except OSError as exc:  # a read-only folder: name the file the user knows, not a hidden temporary name
        exc.filename, exc.filename2 = str(path), None
        raise
    os.close(fd)
    tmp = Path(tmp)
    try:
        honour_umask(tmp)
        yield tmp
        fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if isinstance(exc, OSError) and exc.errno and exc.filename in (None, str(tmp)):  # a full disk's write() names no file
            exc.filename, exc.filename2 = str(path), None
        raise
    fsync_path(path.parent, directory=True)


def write_csv_atomic(df, path, **kwargs) -> Path:
    """Write a DataFrame to CSV through a temporary file and rename."""
    kwargs.setdefault("index", False)
    with atomic_path(path) as tmp:
        df.to_csv(tmp, **kwargs)
    return Path(path)


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def hash_bytes(*parts: bytes | str) -> str:
    """SHA-256 of several byte/str parts, each length-prefixed so concatenations cannot collide."""
    h = hashlib.sha256()
    for p in parts:
        b = p.encode() if isinstance(p, str) else bytes(p)
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


# Names that are a file name on every common file system as they are: a letter or digit first, then
# letters, digits, "_", "-", "."; not ending in "."; not a Windows device name (CON, NUL, COM1, ...).
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_WINDOWS_DEVICES = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}


def safe_name(case_id) -> str:
    """A file-name component for ``case_id`` that stays inside its folder and never collides.

    A plain id (``case001``, ``benign_12``, ``P-7.2``) is used as it is. Any other id (one with
    ``/``, ``\\``, ``..``, NUL, spaces, non-ASCII letters, a leading ``.``, a trailing ``.``, a
    Windows device name such as ``CON``, or over 100 characters) becomes its letters, digits, ``_``
    and ``-`` (others replaced by ``_``, at most 60) followed by ``~`` and the first 16 hex digits of
    the SHA-256 of the id's UTF-8 bytes. Plain ids cannot contain ``~``, so a mapped id never equals
    a plain one, and two different mapped ids differ in their hash.

    Ids that differ only in letter case (``A1``, ``a1``) stay different names; on a
    case-insensitive file system (macOS, Windows) use :func:`safe_names`, which maps such ids too.

    >>> safe_name("case001")
    'case001'
    >>> safe_name("../../etc/passwd")
    '_etc_passwd~3754d6cb3a38e118'
    """
    s = str(case_id)
    if _PLAIN_NAME.fullmatch(s) and not s.endswith(".") and s.split(".")[0].upper() not in _WINDOWS_DEVICES:
        return s
    return _hashed_name(s)


def _hashed_name(s: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", s)[:60]
    return f"{stem}~{hashlib.sha256(s.encode('utf-8', 'surrogatepass')).hexdigest()[:16]}"


def safe_names(case_ids) -> list[str]:
    """:func:`safe_name` of every id, where ids whose names differ only in case are mapped too.

    The names are then distinct on case-insensitive file systems as well: ``["A1", "a1"]`` gives two
    hashed names rather than ``A1`` and ``a1``.
    """
    ids = [str(c) for c in case_ids]
    names = [safe_name(c) for c in ids]
    folded: dict[str, int] = {}
    for n in names:
        folded[n.casefold()] = folded.get(n.casefold(), 0) + 1
    return [n if folded[n.casefold()] == 1 or "~" in n else _hashed_name(c) for c, n in zip(ids, names)]


# ------------------------------------------------------------------------- user files: YAML, excerpts
#: Largest YAML file read from a user (study files, PyRadiomics parameter files): 1 MiB. A study file
#: is a few kB; the limit makes a hostile or mistaken file (a data table, a log) fail before parsing.
YAML_MAX_BYTES = 1 << 20
#: Most nodes that YAML aliases (``*name``) may add to a document once expanded. Anchors and aliases
#: stay usable (a shared list of labels, one value repeated), but a "billion laughs" file, whose
#: nested aliases expand a few lines to 10**9 values, is refused while it is read, before anything
#: expands it.
YAML_MAX_ALIAS_NODES = 1000
#: Deepest nesting of values (mappings and lists inside each other) in a user's YAML or JSON file.
#: A study file is a few levels deep; PyYAML reads nesting by recursion, and a file of ``[[[[...]]]]``
#: within the size limit once ran it out of stack (``RecursionError``, a traceback).
YAML_MAX_DEPTH = 64


def not_a_file(path: str | os.PathLike) -> str | None:
    """What ``path`` is when it exists but is no regular file ("a folder", "a named pipe (FIFO)", ...), else None.

    Links are followed. Checked before a user's input is opened: opening a named pipe waits for a
    writer for ever, and a folder or a device gives a traceback or endless bytes.
    """
    import stat

    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):  # missing, or a name the OS refuses: the caller's "not found"
        return None
    kinds = ((stat.S_ISREG, None), (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
             (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))
    return next((kind for test, kind in kinds if test(mode)), "not a regular file")


def folder_hint(folder: str | os.PathLike, suffixes: tuple[str, ...], example: str) -> str:
    """``"e.g. FOLDER/a.csv; it holds a.csv, b.csv"``: the files of ``folder`` a user may have meant.

    For the message of a command given a folder where a file goes; ``example`` (a file name) when
    the folder holds none of ``suffixes`` (lower case, with the dot). At most 10,000 entries are looked at.
    """
    import itertools

    folder = Path(folder)
    try:
        with os.scandir(folder) as it:
            names = sorted(e.name for e in itertools.islice(it, 10_000)
                           if e.name.lower().endswith(suffixes) and not e.name.startswith(".") and e.is_file())
    except OSError:
        names = []
    if not names:
        return f"e.g. {folder / example}"
    first = example if example in names else names[0]
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return f"e.g. {folder / first}; it holds {shown}"


def excerpt(value, limit: int = 80) -> str:
    """``repr(value)`` cut to at most ``limit`` characters, in time bounded whatever the value's size.

    Error messages quote the offending value through this, so a huge value (a long string, a nested
    list that YAML aliases made from a few lines) never becomes a huge message.
    """
    import reprlib

    r = reprlib.Repr()
    r.maxlevel, r.maxstring, r.maxother, r.maxlong = 3, limit, limit, limit
    r.maxlist = r.maxtuple = r.maxdict = r.maxset = r.maxfrozenset = r.maxdeque = r.maxarray = 6
    text = r.repr(value)
    if "..." not in text:  # nothing cut: the plain repr is short too (and keeps a dict's own order)
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _bounded_yaml_loader(source: str, error):
    import yaml

    class Loader(yaml.SafeLoader):
        """PyYAML's safe loader that also bounds what aliases add (see :data:`YAML_MAX_ALIAS_NODES`)."""

        def __init__(self, stream):
            super().__init__(stream)
            self._sizes: dict[int, int] = {}  # id(node) -> its node count with aliases expanded
            self._added = 0
            self._depth = 0

        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                anchor = self.peek_event().anchor
                node = self.anchors.get(anchor)
                if node is not None:  # an undefined alias is PyYAML's own error
                    size = self._sizes.get(id(node))
                    if size is None:  # the anchored node is not finished: it contains itself
                        raise error(f"{source} uses a recursive alias *{anchor}; YAML files read by srnomogram "
                                    "must be trees. Write the value out.")
                    self._added += size
                    if self._added > YAML_MAX_ALIAS_NODES:
                        raise error(f"{source}: its YAML aliases (*{anchor}, ...) expand to more than "
                                    f"{YAML_MAX_ALIAS_NODES} values (a 'billion laughs' file?); write the values out "
                                    "or use fewer aliases.")
                return super().compose_node(parent, index)
            self._depth += 1  # composing is recursive: bound it before Python's stack is
            if self._depth > YAML_MAX_DEPTH:
                raise error(_too_deep(source, f" (line {self.peek_event().start_mark.line + 1})"))
            try:
                node = super().compose_node(parent, index)
            finally:
                self._depth -= 1
            if isinstance(node, yaml.SequenceNode):
                children = node.value
            elif isinstance(node, yaml.MappingNode):
                children = [n for pair in node.value for n in pair]
            else:
                children = []
            self._sizes[id(node)] = 1 + sum(self._sizes.get(id(c), 1) for c in children)
            return node

    return Loader


def _too_deep(source: str, where: str = "") -> str:
    return (f"{source} nests values more than {YAML_MAX_DEPTH} levels deep{where}, the most srnomogram reads (its settings "
            "are a few levels deep); flatten the values, or check that this is the intended input.")


def load_json(text: str, source: str = "<string>", error=None):
    """:func:`json.loads`, refusing values nested deeper than :data:`YAML_MAX_DEPTH` (as :func:`load_yaml` does).

    ``error`` (default :class:`~srnomogram.errors.InputError`) names ``source``; invalid JSON is
    :class:`json.JSONDecodeError`, raised as it is.
    """
    import json

    from .errors import InputError

    error = error or InputError
    try:
        value = json.loads(text)
    except RecursionError:  # json nests by recursion too: [[[[...]]]] deeper than the stack
        raise error(_too_deep(source)) from None
    stack = [(value, 1)]  # levels counted as in YAML: the top value is level 1, scalars included
    while stack:  # no recursion here: what json read may be deeper than what the code after it can recurse into
        v, depth = stack.pop()
        if depth > YAML_MAX_DEPTH:
            raise error(_too_deep(source))
        if isinstance(v, (dict, list)):
            stack.extend((x, depth + 1) for x in (v.values() if isinstance(v, dict) else v))
    return value


def load_yaml(text: str, source: str = "<string>", error=None):
    """Parse YAML ``text`` as :func:`yaml.safe_load` does, refusing aliases that expand beyond
    :data:`YAML_MAX_ALIAS_NODES` values, recursive aliases, and values nested deeper than
    :data:`YAML_MAX_DEPTH`.

    ``source`` names the text in messages; ``error`` is the :class:`~srnomogram.errors.InputError`
    subclass raised (a YAML syntax error is raised as it is: :class:`yaml.YAMLError`).
    """
    import yaml

    from .errors import InputError

    loader = _bounded_yaml_loader(source, error or InputError)(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def check_user_file(path: str | os.PathLike, what: str, error=None, suffixes: tuple[str, ...] = (), example: str = "",
                    noun: str = "file") -> None:
    """Refuse, in one ``error`` line naming ``what`` and ``path``, an input file that is missing, a folder
    (listing the files of ``suffixes`` inside it, as :func:`folder_hint`) or another non-file (:func:`not_a_file`).

    ``noun`` says what the user should give: "give the {noun} inside it", "give the path of a {noun}".
    """
    from .errors import InputError

    error = error or InputError
    kind = not_a_file(path)
    if kind == "a folder":
        raise error(f"{what} {path} is a folder; give the {noun} inside it ({folder_hint(path, suffixes, example)}).")
    if kind:
        raise error(f"{what} {path} is {kind}, not a file; give the path of a {noun}.")
    if not os.path.isfile(path):
        raise error(f"{what} {path} not found.")


def read_yaml_file(path: str | os.PathLike, what: str = "YAML file", error=None, example: str = "settings.yaml"):
    """Read a user's YAML file: at most :data:`YAML_MAX_BYTES`, UTF-8, bounded aliases (:func:`load_yaml`).

    Every problem is one ``error`` (default :class:`~srnomogram.errors.InputError`) naming ``what``
    and the file: not found, a folder or another non-file (a named pipe would be waited on for ever),
    too large, not UTF-8, invalid YAML, too many aliases, nested too deep.
    """
    import yaml

    from .errors import InputError

    error = error or InputError
    path = Path(path)
    check_user_file(path, what, error, (".yaml", ".yml"), example, noun="YAML file")
    size = path.stat().st_size
    if size > YAML_MAX_BYTES:
        raise error(f"{what} {path} is {size / (1 << 20):.1f} MiB; {what.lower()}s are at most "
                    f"{YAML_MAX_BYTES >> 20} MiB of YAML. Check that it is the right file.")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{what} {path} is not UTF-8 text (byte {exc.start}). Save it as UTF-8.") from None
    try:
        return load_yaml(text, source=f"{what} {path}", error=error)
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0]
        raise error(f"{what} {path} is not valid YAML ({first[:120]}).") from None


# ------------------------------------------------------------------------- one writer per output folder
#: The lock file in an output folder; it names the process that holds it (pid, host, command, start).
LOCK_NAME = ".srnomogram.lock"
_HELD: dict[str, int] = {}  # folders this process holds: real path -> nesting depth


@contextlib.contextmanager
def output_lock(folder: str | os.PathLike, what: str = "srnomogram"):
    """Hold ``<folder>/.srnomogram.lock`` while the block runs: one writer per output folder.

    A study run, an external validation, a prediction and the demo write caches, pins and reports
    under their output folder; two at once mix their files (a pins version written twice ends one
    with a ``PinsError``). The lock is ``fcntl.flock`` on the lock file, so the kernel releases it when
    the holder exits, killed or not: a stale file never blocks a rerun. The file records the
    holder's pid, host, command and start time, which the second writer's error quotes.

    The lock is re-entrant within a process (the demo holds it and runs the study, which takes it
    again). Where the OS or file system has no ``flock`` (Windows; some network file systems) the
    block runs unlocked.

    Parameters
    ----------
    folder : path-like
        The output folder (created if missing).
    what : str
        What holds it, for the record (``"run"``, ``"validate"``, ...).

    Raises
    ------
    OutputInUseError
        When another process holds the folder's lock.
    """
    import json
    import socket
    import sys
    import time

    from .errors import OutputInUseError

    folder = Path(folder).resolve()
    key = str(folder)
    if key in _HELD:
        _HELD[key] += 1
        try:
            yield folder / LOCK_NAME
        finally:
            _HELD[key] -= 1
        return
    try:
        import fcntl
    except ImportError:  # Windows
        yield None
        return
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    locked = True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            holder = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
            who = (f"pid {holder['pid']} on {holder['host']} ({excerpt(holder['command'], 100)}, "
                   f"{holder['what']} since {holder['started']})")
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):  # the holder is writing its record
            who = "another process"
        os.close(fd)
        raise OutputInUseError(
            f"Output folder {folder} is in use by {who}. Wait for it to finish (or stop it), or choose another "
            "output folder."
        ) from None
    except OSError:  # no flock on this file system (ENOLCK, EOPNOTSUPP): run unlocked
        os.close(fd)
        locked = False
    if not locked:
        yield None
        return
    record = {"pid": os.getpid(), "host": socket.gethostname(), "what": what, "command": " ".join(sys.argv)[:500],
              "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(record).encode("utf-8"), 0)
    _HELD[key] = 1
    try:
        yield path
    finally:
        del _HELD[key]
        try:
            os.ftruncate(fd, 0)  # released: the record no longer names a holder
        finally:
            os.close(fd)  # releases the flock


# ---------------------------------------------------------------------------------------- outputs
# Checked up front, before any work, so that a bad output path costs the user nothing and leaves no
# half-written folder: the commands call these on every path they will write.
def _output_error(option: str, path: Path, what: str):
    from .errors import InputError

    return InputError(f"The {option!r} option names {path}{what}")


def _check_not_empty(path, option: str, what: str) -> None:
    """An empty path (``-o ""``) would be the working directory: refused."""
    if not os.fspath(path).strip():
        from .errors import InputError

        raise InputError(f"The {option!r} option is empty; give a {what} path (an empty one would write into the "
                         "current folder).")


def _check_parents(path: Path, option: str) -> None:
    """The first existing folder above ``path`` must be a folder we may write in."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise _output_error(option, path, f", but {parent} is a file, not a folder; choose a path in a folder.")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise _output_error(option, path, f", but {parent} is not writable; choose a folder you can write in.")
            return


def _same_or_inside(path: Path, folder: Path) -> bool:
    path, folder = path.resolve(), Path(folder).resolve()
    return path == folder or folder in path.parents


def check_output_file(path, option: str, inputs: dict | None = None, outside: dict | None = None, example: str | None = None) -> Path:
    """Check that an output file can be written at ``path``, before any work; return it as an absolute path.

    Refused, with one line naming ``option`` (the command-line option, e.g. ``'-o/--output'``):
    an empty path; an existing folder; a path under a file; a folder we may not write in; and a path that is one of
    ``inputs`` (``{"MANIFEST": path}``: the same file, however spelt, links included), which would
    overwrite the input; and a path inside one of ``outside`` (as :func:`check_output_dir`). An
    existing file that is no input may be replaced (atomically, later). ``example``: a file name
    the message suggests inside a folder given by mistake. Nothing is written.
    """
    _check_not_empty(path, option, "file")
    path = Path(path).absolute()
    if path.is_dir():
        hint = f" (e.g. {path / example})" if example else ""
        raise _output_error(option, path, f", an existing folder; give a file path{hint}.")
    _check_parents(path, option)
    for name, src in (inputs or {}).items():
        src = Path(src)
        if path.resolve() == src.resolve() or (path.exists() and src.exists() and os.path.samefile(path, src)):
            raise _output_error(option, path, f", the input {name} itself; write to another file, so that the input is kept.")
    _check_outside(path, option, outside)
    return path


def check_output_dir(path, option: str, outside: dict | None = None) -> Path:
    """Check that ``path`` can be an output folder, before any work; return it as an absolute path.

    Refused, with one line naming ``option``: an empty path (it would be the working directory); an
    existing file; a path under a file; a folder we may not write in; and a folder that is, or lies
    inside, one of ``outside`` (``{"the study folder STUDY_DIR": study}``), whose own files it would mix
    with or replace. An existing folder is fine here (the study commands then check whose it is:
    :mod:`srnomogram.study.folders`). Nothing is written.
    """
    _check_not_empty(path, option, "folder")
    path = Path(path).absolute()
    if path.exists() and not path.is_dir():
        raise _output_error(option, path, ", an existing file; give a folder path.")
    if path.is_dir() and not os.access(path, os.W_OK | os.X_OK):
        raise _output_error(option, path, ", a folder that is not writable; choose a folder you can write in.")
    _check_parents(path, option)
    _check_outside(path, option, outside)
    return path


def _check_outside(path: Path, option: str, outside: dict | None) -> None:
    for name, folder in (outside or {}).items():
        if _same_or_inside(path, folder):
            raise _output_error(option, path, f", which is inside {name} {Path(folder).resolve()}; "
                                              "choose a folder outside it, so that its own files are kept.")
