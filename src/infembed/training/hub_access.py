"""Before anything heavy is loaded: every hub repository the run needs must be reachable (or cached offline).

A local backbone folder must exist (local data files are checked row by row by the DataModule). A hub id must be in the local Hugging Face cache when ``HF_HUB_OFFLINE=1``, and otherwise
answer on the hub. Anything else is one line naming the config key, the repository and the ways out.
"""
from __future__ import annotations

from pathlib import Path

from infembed.errors import UserError
from infembed.hub_ids import is_hub_id

WAYS_OUT = {
    "model": "run with network access (and without HF_HUB_OFFLINE=1), download it once (hf download {id}), or "
    "point {key} at a local model folder",
    "dataset": "run with network access (and without HF_HUB_OFFLINE=1), download it once (hf download {id} "
    "--repo-type dataset), or train on local files: data=local data.train_source=FILE|DIR|GLOB",
}


class HubAccessError(UserError):
    """A model or dataset the run needs can be neither found on disk nor reached on the hub."""


def check_reachable(key: str, name: str, repo_type: str) -> None:
    """``name`` (the value of config ``key``): a reachable hub ``repo_type`` repository, or for a model a local
    folder that exists."""
    if not is_hub_id(name):
        if repo_type == "model" and not Path(name).exists():
            raise HubAccessError(f"{key}={name}: no such model folder (nor an 'org/name' hub id)")
        return
    from huggingface_hub import constants

    problem = cache_problem(name, repo_type) if constants.HF_HUB_OFFLINE else hub_problem(name, repo_type)
    if problem:
        ways_out = WAYS_OUT[repo_type].format(id=name, key=key)
        raise HubAccessError(f"{key}={name}: {problem}; ways out: {ways_out}")


def cache_problem(name: str, repo_type: str) -> str | None:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        snapshot_download(name, repo_type=repo_type, local_files_only=True)
    except LocalEntryNotFoundError:
        return f"the hub {repo_type} is not in the local cache and HF_HUB_OFFLINE=1"
    return None


def hub_problem(name: str, repo_type: str) -> str | None:
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError

    try:
        HfApi().repo_info(name, repo_type=repo_type, timeout=15)
    except RepositoryNotFoundError:
        return f"no such {repo_type} on the hub (or it is private or gated: log in with `hf auth login`)"
    except OSError as error:  # connection refused, DNS, timeout, HTTP 5xx
        return f"the hub is unreachable ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})"
    return None
