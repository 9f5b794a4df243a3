"""Ctrl-C during ``train``'s start-up (at 0.4, 2 and 8 s: the imports, then where the machine's speed puts
the run, among JAX's start, the dataset, the first compilation and the first steps) ends the run with one
line and status 130: never a traceback, never a KeyboardInterrupt that JAX swallows so that the run trains on
to the end."""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from stylegan_jax.cli import run
from tests.training.conftest import tiny_config
from tests.training.test_preemption import cli_overrides


@pytest.mark.slow
@pytest.mark.parametrize("after_s", [0.4, 2.0, 8.0])
def test_ctrl_c_during_start_up_ends_with_one_line_and_status_130(data_dir, tmp_path, after_s):
    cfg = tiny_config(data_dir)
    command = [sys.executable, "-m", "stylegan_jax.train", "--experiment", "digits", "--outdir", str(tmp_path / "run"),
               "--kimg", "10", *cli_overrides(cfg)]
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(after_s)
    process.send_signal(signal.SIGINT)
    try:
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr[-3000:]
    last = stderr.strip().splitlines()[-1]
    assert last == "train: interrupted" or last.startswith("train: stopped by SIGINT"), stderr[-3000:]


def test_ctrl_c_inside_an_import_is_raised_once_the_import_is_done(tmp_path, monkeypatch, capsys):
    """Raised inside an import, a KeyboardInterrupt aborts the process when the module is an extension whose
    initialisation runs Python code (JAX's MLIR bindings did, with SIGABRT); `run` holds it until the import is
    done."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers are the main thread's")
    (tmp_path / "interrupted_module.py").write_text(
        "import os, signal, time\nos.kill(os.getpid(), signal.SIGINT)\ntime.sleep(0.2)\nCOMPLETE = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    imported = []

    def body():
        import interrupted_module

        imported.append(interrupted_module.COMPLETE)
        time.sleep(10)  # the signal's next delivery raises here

    started = time.monotonic()
    assert run("tool", body) == 130
    assert imported == [True] and time.monotonic() - started < 5
    assert capsys.readouterr().err == "tool: interrupted\n"
