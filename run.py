"""Entry point: compose the config, then train (with a before/after evaluation) or evaluate.

python run.py                                   # train MiniLM with multi_p_i on the synthetic data
python run.py loss=uni_p model=e5_base trainer=gpu
python run.py task=evaluate benchmark=beir benchmark.path=DIR benchmark.split=test [ckpt_path=...]

The same Hydra app as the installed ``infembed`` command (:mod:`infembed.cli`).
"""

from infembed.cli import main

if __name__ == "__main__":
    main()
