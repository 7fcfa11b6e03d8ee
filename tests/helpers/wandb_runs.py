"""Offline W&B runs read back: a ``run-<id>.wandb`` file is a LevelDB-style log (7-byte header, 32 KiB blocks, each
chunk = crc32 (4) + length (2) + type (1: full, 2: first, 3: middle, 4: last)) of ``wandb_internal_pb2.Record``s."""

import struct
from pathlib import Path

from wandb.proto import wandb_internal_pb2


def records(path: Path):
    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, chunks = 7, b""
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:  # a block's tail too short for a chunk header is padding
            pos += 32768 - pos % 32768
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0:
            break
        chunks += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunks)
            chunks = b""
            yield record


def read_run(folder: Path) -> dict:
    (path,) = folder.glob("run-*.wandb")
    run = {"artifacts": {}, "config_keys": [], "steps": [], "refs": {}}
    for record in records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run["id"], run["name"], run["resume"] = (
                record.run.run_id,
                record.run.display_name,
                record.run.resume,
            )
            run["group"] = record.run.run_group
            run["config_keys"] += [u.key for u in record.run.config.update if u.key != "_wandb"]
        elif kind == "config":
            run["config_keys"] += [u.key for u in record.config.update if u.key != "_wandb"]
        elif kind == "artifact":
            run["artifacts"][record.artifact.name] = (
                record.artifact.type,
                sorted(c.path for c in record.artifact.manifest.contents),
            )
            run["refs"] |= {c.path: c.ref for c in record.artifact.manifest.contents if c.ref}
        elif kind == "history":
            items = {i.key or "/".join(i.nested_key): i.value_json for i in record.history.item}
            if "trainer/global_step" in items:
                run["steps"].append((record.history.step.num, int(float(items["trainer/global_step"]))))
    return run
