"""Backend choices belong to the run: the conv gradient rule resolved from the trainer's own mesh and
recorded, and the default CPU path (one device, forward-form gradients) trained (its step against XLA's
rule: test_train.py)."""

import json
import re

import jax
import numpy as np
import pytest

from stylegan_jax.training.loop import Trainer, compile_cache, run_config, train
from stylegan_jax.training.steps import resolve_conv_grad
from tests.training.conftest import tiny_config
from tests.training.count_compiles import cache_events


def test_conv_grad_resolution():
    assert resolve_conv_grad("auto", 1, "cpu") == "forward"
    assert resolve_conv_grad("auto", 4, "cpu") == "xla"
    assert resolve_conv_grad("auto", 1, "gpu") == "xla"
    assert resolve_conv_grad("xla", 1, "cpu") == "xla"
    assert resolve_conv_grad("forward", 1, "gpu") == "forward"
    assert resolve_conv_grad("forward", 4, "cpu") == "forward"  # correct on every device count (test_train)
    with pytest.raises(ValueError, match="--config.conv_grad"):
        resolve_conv_grad("fast", 1, "cpu")


def precisions(trainer, phase: str) -> list[str]:
    """The precision of each convolution and matrix product in the lowered program of one phase (StableHLO
    text; 'DEFAULT' where none is given)."""
    state, batch = trainer.initial_state(), trainer.next_batch()
    text = trainer.phases[phase].lower(state, *batch, np.float32(1), np.float32(0)).as_text()
    lines = [line for line in text.splitlines() if re.search(r"stablehlo\.(convolution|dot_general)", line)]
    return [m.group(1) if (m := re.search(r"\b(HIGHEST|HIGH|DEFAULT)\b", line)) else "DEFAULT" for line in lines]


def test_allow_tf32_off_runs_every_float32_product_in_full_precision(data_dir, tmp_path):
    """NVIDIA's allow_tf32=False: every convolution and matrix product of the phases (the custom gradient
    rule's included) asks XLA for full float32; ours by default leaves the networks' to the backend."""
    for phase in ("G_main", "D_reg"):
        found = {}
        for allow in (True, False):
            trainer = Trainer(tiny_config(data_dir, allow_tf32=allow), tmp_path / f"{phase}{allow}",
                              devices=jax.devices()[:1])
            found[allow] = precisions(trainer, phase)
            trainer.manager.close()
        assert len(found[True]) == len(found[False]) > 10
        assert set(found[False]) == {"HIGHEST"}
        assert found[True].count("DEFAULT") > len(found[True]) // 2


def test_config_json_records_the_resolved_choices(data_dir, tmp_path):
    cfg = tiny_config(data_dir, kimg=0.008)
    train(cfg, tmp_path)
    recorded = json.loads((tmp_path / "config.json").read_text())
    assert recorded["conv_grad"] == "xla"  # four devices
    assert recorded["cpu_fusion"] is True
    assert run_config(cfg, jax.devices()[:1]).conv_grad == "forward"


@pytest.mark.slow
def test_a_second_start_compiles_nothing(data_dir, tmp_path, monkeypatch):
    """The persistent compilation cache in the run directory (the default where the process has none; the
    tests' session has one): the first start compiles and writes every program there; resuming the run, moved
    to another directory (JAX's keys held the cache's path through XLA's autotuning cache), finds every program
    it needs (no cache miss). With ``compile_cache='off'`` nothing is cached: `train` builds the
    trainer, which compiles every program, with no cache set, and the context it runs in leaves no cache event
    and no directory (a third full start would compile everything again to show the same)."""
    with cache_events() as events:
        train(tiny_config(data_dir, kimg=0.008, compile_cache="run"), tmp_path / "run")
        assert events["cache_misses"] > 0 and len(list((tmp_path / "run" / "compile-cache").iterdir())) > 0
        events.clear()
        (tmp_path / "run").rename(tmp_path / "moved")
        train(tiny_config(data_dir, kimg=0.016, compile_cache="run"), tmp_path / "moved")  # resumes at iteration 1
        assert events["cache_misses"] == 0 and events["cache_hits"] > 0, events
        events.clear()
        with compile_cache("off", tmp_path / "off"):
            jax.block_until_ready(jax.jit(lambda x: x * 3 + 1)(np.float32(2)))
        assert events["cache_hits"] == events["cache_misses"] == 0, events
    assert json.loads((tmp_path / "moved" / "config.json").read_text())["compile_cache"] == "run"

    class TrainerBuiltError(Exception):
        pass

    def record_cache(self, *args, **kwargs):
        raise TrainerBuiltError(jax.config.jax_compilation_cache_dir)

    monkeypatch.setattr(Trainer, "__init__", record_cache)
    assert jax.config.jax_compilation_cache_dir  # the tests' session cache, which 'off' must not use
    with pytest.raises(TrainerBuiltError) as built:
        train(tiny_config(data_dir, kimg=0.008, compile_cache="off"), tmp_path / "off")
    assert built.value.args == (None,)
    assert not (tmp_path / "off" / "compile-cache").exists()
