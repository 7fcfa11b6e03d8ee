"""Portable checkpoints: the encoder travels with everything needed to rebuild it on another machine.

A training checkpoint (Lightning's ``.ckpt``) holds, under ``checkpoint["infembed"]["encoder"]``, the encoder's
options (pooling, text spec, preset name) and the files of its backbone's config and tokenizer as bytes; the weights
are the ``encoder.*`` entries of the state dict. Loading never touches the folder or hub id it was trained from.

Checkpoints are read through :func:`infembed.checkpoint_files.read_checkpoint` (a damaged file is one line).
A checkpoint written before ``model.truncation`` existed has no such option: it loads with ``truncation="end"``,
the rule it was trained and scored with, so its recorded numbers reproduce; ``model.truncation=query`` at evaluation
(``text_changes``) opts into the new rule.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

import torch

from infembed.checkpoint_files import KEY, read_checkpoint
from infembed.models.encoder import BiEncoder

LEGACY_TRUNCATION = "end"  # the only rule before model.truncation existed

log = logging.getLogger(__name__)


def encoder_record(encoder: BiEncoder) -> dict:
    """``{"options", "files"}``: what :func:`encoder_from_record` needs besides the weights."""
    with tempfile.TemporaryDirectory() as tmp:
        encoder.backbone.config.save_pretrained(tmp)
        encoder.tokenizer.save_pretrained(tmp)
        files = {path.name: path.read_bytes() for path in sorted(Path(tmp).iterdir()) if path.is_file()}
    return {"options": encoder.options(), "files": files}


def _materialise(files: dict[str, bytes]) -> Path:
    """Write the backbone's config and tokenizer files once into a cache folder named by their content hash."""
    digest = hashlib.blake2b(digest_size=12)
    for name, data in sorted(files.items()):
        digest.update(name.encode() + b"\0" + data)
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "infembed" / "backbones"
    folder = cache / digest.hexdigest()
    if not (folder / "config.json").is_file():
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent))
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        try:
            tmp.rename(folder)  # atomic: a parallel job sees the whole folder or none
        except OSError:  # another process wrote the same content first
            shutil.rmtree(tmp)
    return folder


def encoder_from_record(record: dict, state_dict: dict[str, torch.Tensor], **text_changes) -> BiEncoder:
    """Rebuild the encoder (architecture from the stored config, weights from ``state_dict``)."""
    options = {**record["options"], **text_changes}
    if "truncation" not in options:
        log.warning(
            "this checkpoint predates model.truncation: loaded with truncation=%s (the end of a long pair is cut, "
            "as in its training); model.truncation=query keeps the instruction",
            LEGACY_TRUNCATION,
        )
        options["truncation"] = LEGACY_TRUNCATION
    encoder = BiEncoder(str(_materialise(record["files"])), random_init=True, **options)
    encoder.load_state_dict(state_dict)
    return encoder


def load_encoder(path: str | os.PathLike, **text_changes) -> BiEncoder:
    """The trained encoder inside a checkpoint written by ``python run.py`` (CPU tensors).

    ``text_changes`` replace text-spec fields at evaluation time (e.g. ``max_passage_length=256``).
    """
    checkpoint = read_checkpoint(path)
    prefix = "encoder."
    state = {k[len(prefix) :]: v for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)}
    return encoder_from_record(checkpoint[KEY]["encoder"], state, **text_changes)


__all__ = ["KEY", "encoder_from_record", "encoder_record", "load_encoder"]
