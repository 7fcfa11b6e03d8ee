"""Training-loop helpers that plug into the Lightning Trainer: per-step seeding (exact resume), checkpoint-and-exit
on SLURM signals, a guard against non-finite steps, plain progress lines for cluster logs, and a check that the hub
repositories a run needs are reachable before it starts. One file per idea; the callbacks are listed in
conf/callbacks/default.yaml."""
