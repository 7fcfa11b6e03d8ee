"""Checkpoint files on disk: atomic writes on any filesystem layout, one-line errors for damaged reads, and the
newest readable checkpoint of a directory (what ``ckpt_path=last`` resumes from).

A save of ``<dir>/<name>`` is written beside its destination, never in ``$TMPDIR``::

    <dir>/.<name>.<pid>.partial        write, flush, fsync
    os.replace(partial, <dir>/<name>)  atomic within one directory (a copy across filesystems is not)
    fsync(<dir>)                       the rename itself survives a power loss

so a checkpoint path holds the old complete file or the new complete file, whatever kills the process when.
Partial files of interrupted saves are removed by :func:`remove_partial_saves` (the run-directory lock guarantees
none of them belongs to a live run). Every read (training resume, evaluation, export, WiSE-FT, the mteb adapter)
goes through :func:`read_checkpoint`: a missing, empty, truncated or foreign file is one
:class:`~infembed.errors.CheckpointError` naming it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from infembed.errors import CheckpointError

log = logging.getLogger(__name__)
KEY = "infembed"  # the checkpoint entry infembed writes (encoder record, loss, run settings)
PARTIAL = ".partial"


def partial_path(path: Path) -> Path:
    """``<dir>/.<name>.<pid>.partial``: where a save of ``path`` is written before it is renamed into place."""
    return path.with_name(f".{path.name}.{os.getpid()}{PARTIAL}")


def fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def atomic_save(checkpoint: dict, path: str | os.PathLike) -> None:
    """``torch.save`` into a partial file beside ``path``, fsync, rename over ``path``, fsync the directory."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(path)
    try:
        with open(partial, "wb") as handle:
            torch.save(checkpoint, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)  # a failed save (disk full) leaves nothing behind
    fsync_directory(path.parent)


def remove_partial_saves(directory: str | os.PathLike) -> list[Path]:
    """Delete the partial files that interrupted saves left in ``directory``; returns them."""
    directory = Path(directory)
    found = sorted(directory.glob(f".*{PARTIAL}")) if directory.is_dir() else []
    for path in found:
        path.unlink(missing_ok=True)
    if found:
        log.warning("removed %d partial checkpoint file(s) of interrupted saves in %s", len(found), directory)
    return found


def read_checkpoint(path: str | os.PathLike, map_location="cpu", mmap: bool = False) -> dict:
    """The checkpoint dictionary at ``path``; any damage is one line naming the file (``mmap``: tensors stay on
    disk until used, so checking that a large file reads costs its pickle, not its weights)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: not a readable checkpoint (empty file)")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=False, mmap=mmap)
    except Exception as err:  # noqa: BLE001 (truncated zip, EOFError, unpickling error: say which file)
        reason = str(err).splitlines()[0] if str(err) else "no detail"
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(err).__name__}: {reason})") from None
    if not isinstance(checkpoint, dict) or KEY not in checkpoint:
        raise CheckpointError(f"{path}: not written by infembed (no {KEY!r} entry)")
    return checkpoint


def newest_loadable(directory: str | os.PathLike) -> tuple[Path | None, list[str]]:
    """``(path, skipped)``: the most recently written ``*.ckpt`` of ``directory`` that reads (None if none does),
    and the reason for each newer file that was passed over."""
    directory = Path(directory)
    candidates = directory.glob("*.ckpt") if directory.is_dir() else []
    skipped = []
    for path in sorted(candidates, key=lambda p: p.stat().st_mtime_ns, reverse=True):
        try:
            read_checkpoint(path, mmap=True)
        except CheckpointError as err:
            skipped.append(str(err))
            continue
        return path, skipped
    return None, skipped


__all__ = ["KEY", "atomic_save", "newest_loadable", "read_checkpoint", "remove_partial_saves"]
