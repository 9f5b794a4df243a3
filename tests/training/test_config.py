import json

import pytest

from stylegan_jax.train import main
from stylegan_jax.training.config import ConfigError, apply_override, load_experiment

# NVIDIA's presets (stylegan2-ada-pytorch train.py cfg_specs): batch, per-GPU batch, mbstd group, channel base
# (fmaps * 32768), lr, R1 gamma, EMA kimg, EMA ramp-up, mapping layers; cifar also no PL / mixing, D orig;
# ffhq256 is paper256, afhq512 paper512, ffhq1024 stylegan2 (NVIDIA's FFHQ 1024 network's), metfaces1024 (with
# its transfer) paper1024, which differ in gamma only.
PRESETS = {
    "ffhq256": dict(batch_size=64, batch_gpu=8, mbstd=8, channel_base=16384, lr=0.0025, gamma=1.0, ema=20.0,
                    ramp=None, mapping=8, res=256),
    "ffhq1024": dict(batch_size=32, batch_gpu=4, mbstd=4, channel_base=32768, lr=0.002, gamma=10.0, ema=10.0,
                     ramp=None, mapping=8, res=1024),
    "afhq512": dict(batch_size=64, batch_gpu=8, mbstd=8, channel_base=32768, lr=0.0025, gamma=0.5, ema=20.0,
                    ramp=None, mapping=8, res=512),
    "metfaces1024": dict(batch_size=32, batch_gpu=4, mbstd=4, channel_base=32768, lr=0.002, gamma=2.0, ema=10.0,
                         ramp=None, mapping=8, res=1024),
    "cifar10": dict(batch_size=64, batch_gpu=32, mbstd=32, channel_base=32768, lr=0.0025, gamma=0.01, ema=500.0,
                    ramp=0.05, mapping=2, res=32),
}


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_carry_nvidias_numbers(name):
    p, c = PRESETS[name], load_experiment(name)
    assert (c.batch_size, c.batch_gpu, c.D.mbstd_group_size) == (p["batch_size"], p["batch_gpu"], p["mbstd"])
    assert c.G.channel_base == c.D.channel_base == p["channel_base"]
    assert c.G.channel_max == c.D.channel_max == 512
    assert c.G_lr == c.D_lr == p["lr"] and c.r1_gamma == p["gamma"]
    assert c.ema_kimg == p["ema"] and c.ema_rampup == p["ramp"]
    assert c.G.mapping_layers == p["mapping"] and c.resolution == p["res"]
    assert c.G.num_fp16_res == c.D.num_fp16_res == 4 and c.G.conv_clamp == c.D.conv_clamp == 256
    assert c.betas == (0.0, 0.99) and c.eps == 1e-8
    assert c.aug == "ada" and c.augpipe == "bgc" and c.ada_target == 0.6  # NVIDIA's train.py defaults
    assert (c.G_reg_interval, c.D_reg_interval, c.pl_decay, c.pl_batch_shrink) == (4, 16, 0.01, 2)
    if name == "cifar10":
        assert c.pl_weight == 0 and c.style_mixing_prob == 0 and c.D.architecture == "orig" and c.conditional
    else:
        assert c.pl_weight == 2 and c.style_mixing_prob == 0.9 and c.D.architecture == "resnet" and c.xflip
    # the ADA README's MetFaces run: --resume=ffhq1024 --snap=10 (NVIDIA's transfer source file)
    assert (c.resume_from, c.snap) == (("ffhq1024", 10) if name == "metfaces1024"
                                       else ("", 50))


def test_overrides_and_unknown_keys():
    c = load_experiment("quickstart")
    apply_override(c, "batch_size", "32")
    apply_override(c, "G.conv_clamp", "256")
    apply_override(c, "ema_kimg", "2")
    assert (c.batch_size, c.G.conv_clamp, c.ema_kimg) == (32, 256, 2.0)
    with pytest.raises(ConfigError, match=r"--config.batch_sise: unknown key; valid keys: .*batch_size"):
        apply_override(c, "batch_sise", "3")


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["--experiment", "nope"]) == 1
    assert "unknown experiment 'nope'" in capsys.readouterr().err
    assert main(["--experiment", "quickstart", "--config.nope=1", "--outdir", str(tmp_path)]) == 1
    assert "valid keys" in capsys.readouterr().err
    code = main(["--experiment", "ffhq256", f"--config.data_dir={tmp_path}", "--outdir", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1
    assert "dataset_tool" in err and str(tmp_path) in err


def test_auto_is_nvidias_cfg_auto_for_the_device_count_and_keeps_given_values():
    import jax

    from stylegan_jax.training.loop import run_config

    def resolved(devices, resolution, **given):
        c = load_experiment("auto")
        c.resolution = resolution
        c.update(given)
        r = run_config(c, jax.devices()[:devices])
        return (r.batch_size, r.batch_gpu, r.D.mbstd_group_size, r.G.channel_base, r.D.channel_base, r.G_lr,
                r.D_lr, r.r1_gamma, r.ema_kimg)

    # NVIDIA: batch max(min(gpus * min(4096 // res, 32), 64), gpus), mbstd min(batch // gpus, 4), ...
    assert resolved(4, 256) == (64, 16, 4, 16384, 16384, 0.0025, 0.0025, pytest.approx(0.2048), 20.0)
    assert resolved(1, 1024) == (4, 4, 4, 32768, 32768, 0.002, 0.002, pytest.approx(52.4288), 1.25)
    # NVIDIA's --batch changes the batch (and the per-GPU batch) only: gamma, EMA, mbstd stay auto's
    assert resolved(4, 256, batch_size=32) == (32, 8, 4, 16384, 16384, 0.0025, 0.0025, pytest.approx(0.2048), 20.0)
    assert load_experiment("auto").aug == "ada" and load_experiment("ffhq256").aug == "ada"
    # NVIDIA's cfg_specs['auto']: map=2, ramp=0.05, and train.py's kimg 25000 for every preset.
    c = load_experiment("auto")
    c.resolution = 256
    r = run_config(c, jax.devices())
    assert (r.ema_rampup, r.G.mapping_layers, r.kimg, r.aug) == (0.05, 2, 25000, "ada")


def test_auto_dry_run_resolves_nvidias_values_without_the_dataset(capsys, tmp_path):
    """The issue's command with --dry-run and --config.resolution=256: auto's values for the 4 test devices
    (batch 64 = max(min(4 * min(4096 // 256, 32), 64), 4), gamma 0.0002 * 256^2 / 64, EMA 64 * 10 / 32 kimg)."""
    empty = tmp_path / "no-datasets"
    assert main(["--experiment", "auto", "--dry-run", "--config.dataset=mydata", f"--config.data_dir={empty}",
                 "--config.resolution=256"]) == 0
    out = capsys.readouterr().out.splitlines()
    c = json.loads("\n".join(out[: out.index("}") + 1]))
    assert (c["resolution"], c["batch_size"], c["batch_gpu"], c["D"]["mbstd_group_size"]) == (256, 64, 16, 4)
    assert c["G"]["channel_base"] == c["D"]["channel_base"] == 16384 and c["G_lr"] == c["D_lr"] == 0.0025
    assert (c["r1_gamma"], c["ema_kimg"], c["ema_rampup"]) == (pytest.approx(0.2048), 20.0, 0.05)
    assert (c["G"]["mapping_layers"], c["kimg"], c["aug"], c["dataset"]) == (2, 25000, "ada", "mydata")
    assert c["img_channels"] == 3  # the dataset's when there is one
    assert not empty.exists()


def test_auto_takes_the_resolution_and_channels_from_the_dataset(capsys, data_dir):
    """NVIDIA's train.py --cfg=auto: res = training_set.resolution, then auto's formulas at that res. The
    built-in digits-16 (16x16 gray) on the 4 test devices: batch max(min(4 * min(4096 // 16, 32), 64), 4) = 64,
    per device 16, mbstd min(64 // 4, 4) = 4, fmaps 0.5 (channel_base 16384), lr 0.0025, gamma
    0.0002 * 16^2 / 64 = 0.0008, EMA 64 * 10 / 32 = 20 kimg; 1 channel."""
    assert main(["--experiment", "auto", "--dry-run", "--config.dataset=digits-16",
                 f"--config.data_dir={data_dir}"]) == 0
    out = capsys.readouterr().out.splitlines()
    c = json.loads("\n".join(out[: out.index("}") + 1]))
    assert (c["resolution"], c["img_channels"]) == (16, 1)
    assert (c["batch_size"], c["batch_gpu"], c["D"]["mbstd_group_size"]) == (64, 16, 4)
    assert c["G"]["channel_base"] == c["D"]["channel_base"] == 16384 and c["G_lr"] == c["D_lr"] == 0.0025
    assert (c["r1_gamma"], c["ema_kimg"]) == (pytest.approx(0.0008), 20.0)
    # A value given stays: the channels here, the resolution in the test above.
    assert main(["--experiment", "auto", "--dry-run", "--config.dataset=digits-16", f"--config.data_dir={data_dir}",
                 "--config.img_channels=3"]) == 0
    out = capsys.readouterr().out.splitlines()
    c = json.loads("\n".join(out[: out.index("}") + 1]))
    assert (c["resolution"], c["img_channels"]) == (16, 3)


@pytest.mark.parametrize("dataset", ["mydata", ""])
def test_auto_without_the_dataset_or_a_resolution_is_one_line(capsys, tmp_path, dataset):
    """No dataset to take the resolution from: one line naming the dataset (or asking for one) and
    --config.resolution, with --dry-run as without."""
    empty = tmp_path / "no-datasets"
    for extra in (["--dry-run"], ["--outdir", str(tmp_path / "run")]):
        assert main(["--experiment", "auto", f"--config.dataset={dataset}", f"--config.data_dir={empty}",
                     *extra]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err, err
        assert "--config.resolution" in err
        assert ("'mydata' not found" in err and str(empty / "mydata") in err) if dataset else "--config.dataset" in err
    assert not empty.exists()


def test_the_augmentation_shortcut_flags_set_their_config_keys(capsys):
    """NVIDIA's --aug, --p, --target, --augpipe -> aug, p, ada_target, augpipe (values unlike the defaults)."""
    args = ["--experiment", "quickstart", "--dry-run", "--aug", "ada", "--p", "0.35", "--target", "0.7",
            "--augpipe", "bgcf"]
    assert main(args) == 0
    out = capsys.readouterr().out.splitlines()
    c = json.loads("\n".join(out[: out.index("}") + 1]))
    assert (c["aug"], c["p"], c["ada_target"], c["augpipe"]) == ("ada", 0.35, 0.7, "bgcf")
    default = load_experiment("quickstart")
    assert (default.aug, default.p, default.ada_target, default.augpipe) == ("noaug", 0.0, 0.6, "bgc")


def test_the_minibatch_stddev_group_is_checked_as_each_lineages_d_takes_it():
    """stylegan2-ada-pytorch's D: None (the whole per-device batch) or a group >= 1 (its mbstd_num_channels=0
    turns the layer off); NVIDIA's TensorFlow D (PGGAN): a whole number, 0 or 1 none."""
    from stylegan_jax.models import get_family
    from stylegan_jax.training.steps import check_config

    for group in (0, 1):
        pggan = load_experiment("pggan")
        pggan.D.mbstd_group_size = group
        check_config(pggan, get_family("pggan"))
    pggan.D.mbstd_group_size = None
    with pytest.raises(ConfigError, match=r"D.mbstd_group_size: expected a whole number \(0 or 1: no minibatch"):
        check_config(pggan, get_family("pggan"))
    sg2 = load_experiment("quickstart")
    sg2.D.mbstd_group_size = None
    check_config(sg2, get_family("stylegan2"))
    sg2.D.mbstd_group_size = 0
    with pytest.raises(ConfigError, match=r"expected None \(the whole per-device batch\) or a group of at least 1"):
        check_config(sg2, get_family("stylegan2"))


def test_a_scheduled_beta2_stays_under_1():
    from stylegan_jax.models import get_family
    from stylegan_jax.training.steps import check_config

    cfg = load_experiment("r3gan_cifar10")
    check_config(cfg, get_family("r3gan"))  # 0.9 -> 0.99
    cfg.decay.beta2 = 1.0  # Adam's bias correction would divide by 1 - 1^t = 0
    with pytest.raises(ConfigError, match=r"--config.decay.beta2: expected Adam's beta2 in \[0, 1\), got 1.0"):
        check_config(cfg, get_family("r3gan"))


def test_a_growing_runs_batch_that_its_stddev_group_does_not_divide_names_the_resolution():
    from stylegan_jax.training.loop import check_run

    cfg = load_experiment("pggan")
    cfg.resolution = 16
    cfg.growing.update(batch_size=((4, 24),), batch_gpu=((4, 6),))  # mbstd group 4 does not divide 6 at 4x4
    with pytest.raises(ConfigError, match=r"the per-device batch 6 \(--batch-gpu 6 at 4x4, or "
                                          r"--config.growing.batch_size/batch_gpu there\) is not a multiple of D's "
                                          r"minibatch-stddev group 4"):
        check_run(cfg, 4)
