"""Hydra plugins of infembed (Hydra finds plugins only in the ``hydra_plugins`` namespace package)."""
