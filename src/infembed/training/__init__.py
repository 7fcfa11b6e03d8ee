"""Training-loop helpers that plug into the Lightning Trainer (callbacks)."""
