"""generate, style_mixing, gen_video, calc_metrics, projector and avg_spectra (stats, calc) pass --cpu-fusion /
--no-cpu-fusion to `configure_runtime` before any work (StyleGAN3-R networks at 256 and above need fusion off
to fit in memory)."""

import pytest

from stylegan_jax import avg_spectra, calc_metrics, gen_video, generate, projector, style_mixing
from tests.cli.usage import assert_one_error_line, run_tool

# Each tool's shortest command line; its network file is missing, so the run stops with an error after
# configuring the runtime and before anything else.
ARGV = {
    "generate": (generate, ["--network", "{net}", "--outdir", "{out}", "--seeds", "0"]),
    "style_mixing": (style_mixing, ["--network", "{net}", "--outdir", "{out}", "--rows", "0", "--cols", "1"]),
    "gen_video": (gen_video, ["--network", "{net}", "--seeds", "0", "--output", "{out}/v.mp4"]),
    "calc_metrics": (calc_metrics, ["--network", "{net}"]),
    "projector": (projector, ["--network", "{net}", "--target", "{net}", "--outdir", "{out}"]),
    "avg_spectra": (avg_spectra, ["calc", "--source", "{net}", "--num", "1", "--mean", "0", "--std", "1", "--dest",
                                  "{out}/s.npz"]),
}


@pytest.mark.parametrize("flag, fusion", [([], True), (["--no-cpu-fusion"], False), (["--cpu-fusion"], True)])
@pytest.mark.parametrize("tool", ARGV)
def test_cpu_fusion_flag_reaches_configure_runtime(tool, flag, fusion, tmp_path, monkeypatch, capsys):
    module, template = ARGV[tool]
    chosen = []
    monkeypatch.setattr(module, "configure_runtime", lambda cpu_fusion=True: chosen.append(cpu_fusion))
    net = tmp_path / "missing.pkl"
    argv = [a.format(net=net, out=tmp_path / "out") for a in template] + flag
    code, out, err = run_tool(module.main, argv, capsys)
    assert chosen == [fusion]
    assert_one_error_line(tool, code, out, err, "missing.pkl")
