"""The Lightning callbacks of conf/callbacks/default.yaml, one file each: per-step seeding (exact resume),
checkpoint-and-exit on SLURM signals, step checkpoints that keep the final step, a guard against non-finite steps,
and progress lines for cluster logs."""
