"""D's main step takes R1 and R2 from the passes that give its loss the logits: D runs once on the fakes and once
on the reals (as R3GAN's Trainer and NVIDIA's loss do), not once more per penalty."""

import numpy as np
import pytest

from stylegan_jax.training.config import load_experiment, shrink_to_tiny
from stylegan_jax.training.loop import Trainer
from stylegan_jax.training.steps import Phases


@pytest.mark.parametrize("experiment, penalties", [
    ("r3gan_cifar10", ["Loss/r1_penalty", "Loss/r2_penalty"]),  # R1 and R2 in every D step
    ("ablations/stylegan1_f", ["Loss/r1_penalty"]),  # R1 in every D step, not lazy
])
def test_d_main_runs_d_once_on_the_fakes_and_once_on_the_reals(experiment, penalties, data_dir, tmp_path,
                                                                 monkeypatch):
    cfg = load_experiment(experiment)
    cfg.tiny = True
    cfg = shrink_to_tiny(cfg)
    cfg.data_dir = str(data_dir)
    assert not cfg.lazy_regularization
    trainer = Trainer(cfg, tmp_path)
    state = trainer.initial_state()
    batch = trainer.device_batch(next(trainer.iterator))
    calls, run_D = [], Phases.run_D

    def counted(self, *args):
        calls.append(args)
        return run_D(self, *args)

    monkeypatch.setattr(Phases, "run_D", counted)
    outputs = trainer.phases["D_main"].eval_shape(state, *batch, np.float32(1))[1]
    assert [name for name in penalties if name in outputs] == penalties
    assert len(calls) == 2
