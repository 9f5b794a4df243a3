"""avg_spectra (StyleGAN3's tool): its spectra against NVIDIA's formula in NumPy float64, image for image as
NVIDIA's avg_spectra.py draws them from a network or reads them from a dataset; stats against NumPy; the
plots drawn; bad input as one line with nothing written."""

import io

import numpy as np
import PIL.Image
import pytest

from stylegan_jax import avg_spectra, spectra
from stylegan_jax.data import make_iterator
from stylegan_jax.data.images import encode_png
from stylegan_jax.data.tfds_builder import DatasetSpec, write_dataset
from stylegan_jax.images import to_uint8
from stylegan_jax.network_snapshot import save_network
from tests.cli.usage import expect_usage_error, run_tool
from tests.metrics.conftest import C_DIM, G_KWARGS, RES, dataset, generator  # noqa: F401 - shared fixtures


def nvidia_spectrum(images: np.ndarray, mean: float, std: float, beta: float, interp: int,
                    spectrum_size: int | None = None) -> np.ndarray:
    """NVIDIA's calc in float64: per uint8 image [H, W, C], whiten, Kaiser window of unit energy per axis
    (torch.kaiser_window(periodic=False) is np.kaiser), zero-pad bottom and right to interp x size (or
    ``spectrum_size``), |FFT2|^2 averaged over channels; the mean over images."""
    size = images.shape[1]
    spectrum_size = spectrum_size or size * interp
    w = np.kaiser(size, beta)
    w = np.outer(w, w) / np.square(w).sum()
    total = np.zeros((spectrum_size, spectrum_size))
    for image in images.astype(np.float64):
        x = (np.moveaxis(image, -1, 0) - mean) / std * w
        x = np.pad(x, [(0, 0), (0, spectrum_size - size), (0, spectrum_size - size)])
        total += np.square(np.abs(np.fft.fft2(x))).mean(axis=0)
    return total / len(images)


def dataset_images(path) -> np.ndarray:
    it = make_iterator(path, batch_size=64, shuffle=False, num_epochs=1, drop_remainder=False)
    return np.concatenate([np.asarray(to_uint8(b["image"])) for b in it])


def calc(tmp_path, source, *extra, mean=100.0, std=50.0):
    dest = tmp_path / "out" / "spectrum.npz"
    assert avg_spectra.main(["calc", "--source", str(source), "--dest", str(dest), "--mean", str(mean), "--std",
                             str(std), *extra]) == 0
    with np.load(dest) as data:
        return data["spectrum"], data["image_size"]


def test_a_datasets_spectrum_is_nvidias(dataset, tmp_path):  # noqa: F811 - the fixture imported above
    spectrum, size = calc(tmp_path, dataset, "--beta", "6", "--interp", "3", "--batch-size", "5")
    assert size.dtype == np.int64 and size.shape == () and int(size) == RES  # NVIDIA's .npz keys and types
    expected = nvidia_spectrum(dataset_images(dataset), 100.0, 50.0, beta=6, interp=3)
    assert spectrum.shape == (3 * RES, 3 * RES) and spectrum.dtype == np.float64
    np.testing.assert_allclose(spectrum, expected, rtol=2e-5, atol=1e-7 * expected.max())
    assert np.abs(spectrum / expected - 1).max() < 1e-3  # every bin, the faintest included


def test_num_takes_the_images_nvidias_max_size_takes(dataset, tmp_path):  # noqa: F811
    part, _ = calc(tmp_path, dataset, "--num", "5", "--seed", "3")
    kept = np.arange(24)
    np.random.RandomState(3).shuffle(kept)  # NVIDIA's Dataset(max_size=5, random_seed=3)
    expected = nvidia_spectrum(dataset_images(dataset)[np.sort(kept[:5])], 100.0, 50.0, beta=8, interp=4)
    np.testing.assert_allclose(part, expected, rtol=2e-5, atol=1e-7 * expected.max())
    whole, _ = calc(tmp_path, dataset)
    np.testing.assert_allclose(calc(tmp_path, dataset, "--num", "24", "--seed", "3")[0], whole, rtol=1e-6)


def test_a_networks_images_are_drawn_as_nvidias_tool_draws_them(generator, tmp_path):  # noqa: F811
    G, G_vars = generator  # no noise inputs: an image depends on z and c alone
    snapshot = save_network(tmp_path / "snap", model="stylegan2", G_kwargs=G_KWARGS, D_kwargs=None, G_ema=G_vars)
    spectrum, size = calc(tmp_path, snapshot, "--num", "7", "--seed", "40", "--batch-size", "3", mean=128, std=64)
    images = []
    for seed in range(40, 47):  # NVIDIA: RandomState(seed + i): z, then the class
        rnd = np.random.RandomState(seed)
        z = rnd.randn(1, G.z_dim).astype(np.float32)
        c = np.eye(C_DIM, dtype=np.float32)[[rnd.randint(C_DIM)]]
        images.append(np.asarray(to_uint8(G.apply(G_vars, z, c, noise_mode="const")))[0])
    expected = nvidia_spectrum(np.stack(images), 128, 64, beta=8, interp=4)
    assert int(size) == RES
    np.testing.assert_allclose(spectrum, expected, rtol=2e-5, atol=1e-7 * expected.max())


@pytest.mark.parametrize("batch", ["5", "100000000"])  # the second far above the images: as many rows as they
def test_stats_are_the_mean_and_deviation_of_every_pixel(dataset, capsys, batch):  # noqa: F811
    code, out, err = run_tool(avg_spectra.main, ["stats", "--source", dataset, "--batch-size", batch], capsys)
    assert code == 0, err
    pixels = dataset_images(dataset).astype(np.float64)
    assert out == f"--mean={pixels.mean():g} --std={pixels.std():g}\n"


def test_stats_take_w_x_h_images_too(bad, capsys):
    """A mean and a deviation need no square: only ``calc`` refuses W x H images."""
    code, out, err = run_tool(avg_spectra.main, ["stats", "--source", bad / "wide"], capsys)
    assert code == 0, err
    assert out == "--mean=0 --std=0\n"  # the one 16x8 image is black


def test_the_power_sum_keeps_half_the_frequencies_and_the_full_spectrum_restores_them():
    images = np.random.default_rng(0).integers(0, 256, (2, 6, 6, 3)).astype(np.uint8)
    window = spectra.kaiser_window(6, 8.0)
    half = np.asarray(spectra.power_sum(images, np.float32([1, 1]), 127.0, 60.0, window, spectrum_size=15))
    assert half.shape == (15, 8)  # an odd spectrum size too
    np.testing.assert_allclose(spectra.full_spectrum(half.astype(np.float64)) / 2,
                               nvidia_spectrum(images, 127.0, 60.0, beta=8.0, interp=0, spectrum_size=15), rtol=1e-4)


def test_the_heatmap_is_in_db_centred_and_closed_on_both_ends():
    spectrum = np.random.default_rng(1).uniform(0.1, 10, (8, 8))
    hmap = spectra.heatmap(spectrum, 4, smooth=0)
    i = np.arange(9)
    expected = 10 * np.log10(spectrum[np.ix_((i - 4) % 8, (i - 4) % 8)])  # row and column 0 at -1/2 and +1/2
    np.testing.assert_allclose(hmap, expected, rtol=1e-12)
    # NVIDIA's smoothing: a Gaussian of sigma = S / image_size * smooth bins (here 8 / 4 * 1.5 = 3), the edges
    # repeated; written out as SciPy's gaussian_filter computes it (taps out to round(4 sigma), normalised).
    sigma = 3.0
    taps = np.arange(-round(4 * sigma), round(4 * sigma) + 1)
    kernel = np.exp(-0.5 * (taps / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(hmap, len(taps) // 2, mode="edge")
    rows = np.stack([np.convolve(r, kernel, mode="valid") for r in padded])
    expected = np.stack([np.convolve(c, kernel, mode="valid") for c in rows.T]).T
    np.testing.assert_allclose(spectra.heatmap(spectrum, 4, smooth=1.5), expected, rtol=1e-12)


def test_heatmap_and_slices_draw_nvidias_figures(dataset, tmp_path):  # noqa: F811
    calc(tmp_path, dataset)
    npz = tmp_path / "out" / "spectrum.npz"
    other = tmp_path / "other.npz"
    other.write_bytes(npz.read_bytes())
    for argv, size in ((["heatmap", npz], (600, 480)), (["slices", npz, other, "--dpi", "50"], (600, 230))):
        png = tmp_path / "plots" / f"{argv[0]}.png"
        assert avg_spectra.main([str(a) for a in argv] + ["--save", str(png)]) == 0
        assert PIL.Image.open(io.BytesIO(png.read_bytes())).size == size


@pytest.mark.parametrize("size, interp", [(8, 2), (9, 1)])
def test_the_heatmap_draws_the_spectrum_in_db_over_the_frequencies(tmp_path, monkeypatch, size, interp):
    """Unsmoothed: filled contours of the closed-form heatmap (10 log10 of the centred spectrum, both ends
    closed) on -size/2 .. size/2, NVIDIA's 13 levels from -40 to 20 dB, extended both ways, 5 ticks per axis."""
    bins = size * interp
    spectrum = 10.0 ** np.random.default_rng(2).uniform(-4.5, 2.5, (bins, bins))  # -45 .. 25 dB: past both ends
    npz = tmp_path / "s.npz"
    np.savez(npz, spectrum=spectrum, image_size=size)
    figures = []
    monkeypatch.setattr(avg_spectra, "_finish", lambda args, fig: figures.append(fig))
    assert avg_spectra.main(["heatmap", str(npz), "--smooth", "0", "--save", str(tmp_path / "h.png")]) == 0
    ax = figures[0].axes[0]
    filled = ax.collections[0]
    i = np.arange(bins + 1) - bins // 2  # rows and columns from -1/2 to +1/2 of the sampling rate
    db = 10 * np.log10(spectrum[np.ix_(i % bins, i % bins)])
    assert (filled.zmin, filled.zmax) == (db.min(), db.max())
    np.testing.assert_allclose(filled.levels, np.arange(-40, 21, 5))
    assert filled.extend == "both"
    for limits, ticks in ((ax.get_xlim(), ax.get_xticks()), (ax.get_ylim(), ax.get_yticks())):
        np.testing.assert_allclose(limits, (-size / 2, size / 2), rtol=1e-12)
        np.testing.assert_allclose(ticks, np.linspace(-size / 2, size / 2, 5), rtol=1e-12)


@pytest.mark.parametrize("size, interp", [(8, 2), (9, 1), (3, 3)])
def test_slices_plot_the_spectrum_from_the_zero_frequency_on(tmp_path, monkeypatch, size, interp):
    """The 0 and 45 degree lines, unsmoothed: bins k = 0 .. S // 2 of the spectrum's first row and diagonal at k
    image-size / S (times sqrt 2 on the diagonal); the last is the Nyquist bin for even S (odd S has none)."""
    bins = size * interp
    spectrum = np.random.default_rng(0).uniform(0.5, 2.0, (bins, bins))
    npz = tmp_path / "s.npz"
    np.savez(npz, spectrum=spectrum, image_size=size)
    figures = []
    monkeypatch.setattr(avg_spectra, "_finish", lambda args, fig: figures.append(fig))
    assert avg_spectra.main(["slices", str(npz), "--save", str(tmp_path / "s.png")]) == 0
    k = np.arange(bins // 2 + 1)
    db = 10 * np.log10(spectrum)
    for ax, scale, values in zip(figures[0].axes, (1, np.sqrt(2)), (db[0, k % bins], db[k % bins, k % bins]),
                                 strict=True):
        x, y = ax.lines[0].get_data()
        np.testing.assert_allclose(x, k * size / bins * scale, rtol=1e-12)
        np.testing.assert_allclose(y, values, rtol=1e-12)


@pytest.fixture(scope="module")
def bad(tmp_path_factory, generator):  # noqa: F811
    """Files the bad-input cases name: a snapshot, a wide dataset, spectra of two sizes, a non-spectrum .npz."""
    root = tmp_path_factory.mktemp("bad")
    save_network(root / "snap", model="stylegan2", G_kwargs=G_KWARGS, D_kwargs=None, G_ema=generator[1])
    spec = DatasetSpec(resolution="16x8", channels=1, label_kind="none", c_dim=0)
    write_dataset(root / "wide", spec, [{"image": encode_png(np.zeros((8, 16, 1), np.uint8))}])
    np.savez(root / "s16.npz", spectrum=np.ones((64, 64)), image_size=16)
    np.savez(root / "s8.npz", spectrum=np.ones((32, 32)), image_size=8)
    np.savez(root / "other.npz", w=np.ones(3))
    for name, value in (("nan", np.nan), ("zero", 0.0), ("negative", -1.0)):
        spectrum = np.ones((64, 64))
        spectrum[3, 5] = value
        np.savez(root / f"{name}.npz", spectrum=spectrum, image_size=16)
    np.savez(root / "strings.npz", spectrum=np.array([["a"]]), image_size=16)
    np.save(root / "array.npy", np.ones(3))
    (root / "text.npz").write_text("not an archive")
    (root / "data.zip").write_bytes(b"PK")  # NVIDIA's dataset form: not a network
    return root


CALC = ["calc", "--mean", "1", "--std", "1", "--dest"]


@pytest.mark.parametrize("argv, expected", [
    (["stats", "--source", "{root}/snap"], "--num is required when --source is a network"),
    ([*CALC, "{root}/new/x.npz", "--source", "{data}", "--num", "25"], "--num 25: dataset"),
    ([*CALC, "{root}/new/x.npz", "--source", "{root}/wide"], "has 16x8 images; average spectra are taken of "
     "square images only"),
    ([*CALC, "{root}/new/x.npz", "--source", "{root}/gone.pkl", "--num", "2"], "gone.pkl: no such file"),
    ([*CALC, "{root}/new/x", "--source", "{data}"], "expected a file name ending in .npz"),
    ([*CALC, "{root}/new/x.npz", "--source", "{data}", "--interp", "100000"], "--interp 100000: spectra of "
     "1600000x1600000 (16 pixels x 100000) need more memory than there is; use a smaller --interp"),
    ([*CALC, "{root}", "--source", "{data}"], "is a directory; expected a file name"),
    (["calc", "--mean", "1", "--std", "0", "--dest", "{root}/x.npz", "--source", "{data}"], "is not positive"),
    ([*CALC, "{root}/x.npz", "--source", "{root}/snap", "--num", "2", "--seed", "4294967295"],
     "must stay <= 4294967295"),
    (["heatmap", "{root}/gone.npz"], "gone.npz: not a readable .npz file ([Errno 2] No such file"),
    (["heatmap", "{root}/text.npz"], "text.npz: not a readable .npz file (neither a .npz "
     "archive nor a .npy array of numbers; pickled data is never loaded); expected a spectrum that avg_spectra calc"),
    (["heatmap", "{root}/array.npy"], "array.npy: not a readable .npz file (a .npy array); expected a "
     "spectrum"),
    (["heatmap", "{root}/other.npz"], "other.npz: holds ['w'], not the spectrum and image_size"),
    (["slices", "{root}/strings.npz"], "strings.npz: its array 'spectrum' holds <U1 values, not numbers"),
    (["slices", "{root}/s16.npz", "{root}/s8.npz", "--save", "{root}/new/s.png"],
     "the .npz files must have one resolution"),
    (["slices", "{root}/s16.npz", "--smooth", "-1"], "-1 is negative"),
    (["slices", "{root}/s16.npz", "--smooth", "1e30", "--save", "{root}/new/s.png"], "--smooth 1e+30: expected at "
     "most the image size, 16 (the map is flat past it)"),
    (["heatmap", "{root}/nan.npz", "--save", "{root}/new/h.png"], "nan.npz: the spectrum holds values that are not "
     "finite positive powers (NaN, inf, zero or negative); expected what avg_spectra calc writes"),
    (["slices", "{root}/s16.npz", "{root}/zero.npz", "--save", "{root}/new/s.png"], "zero.npz: the spectrum holds"),
    (["heatmap", "{root}/negative.npz", "--save", "{root}/new/h.png"], "negative.npz: the spectrum holds"),
    (["heatmap", "{root}/s16.npz", "--save", "{root}/new/h.foo"], "--save {root}/new/h.foo: expected a file name "
     "ending in one of"),
    (["heatmap", "{root}/s16.npz", "--dpi", "30000", "--save", "{root}/new/h.png"], "--dpi 30000: the 6x4.8-inch "
     "figure would be 180000x144000 pixels; expected 1 to 65535 a side"),
    (["slices", "{root}/s16.npz", "--dpi", "0.0001", "--save", "{root}/new/s.png"], "--dpi 0.0001: the 12x4.6-inch "
     "figure would be 0x0 pixels"),
    ([*CALC, "{root}/x.npz", "--source", "{root}/data.zip"], "data.zip"),
    (["heatmap", "{root}/s16.npz"], "heatmap: no display to show the figure on (matplotlib backend 'agg'); pass "
     "--save FILE"),  # the tests' backend, as a machine without a display
])
def test_bad_input_is_one_line_and_writes_nothing(bad, dataset, capsys, argv, expected):  # noqa: F811
    argv = [a.format(root=bad, data=dataset) for a in argv]
    expect_usage_error("avg_spectra", avg_spectra.main, argv, expected.format(root=bad), bad, capsys)


def test_spectra_the_device_cannot_hold_name_the_batch_as_a_way_out(bad, dataset, capsys, monkeypatch):  # noqa: F811
    """Past the host's sums (which a smaller batch does not shrink: the --interp case above), the device may
    run out of memory for a batch of spectra: then a smaller --batch-size is the other way out."""
    import jax

    def out_of_memory(*args, **kwargs):
        raise jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: Out of memory allocating 4294967296 bytes.")

    monkeypatch.setattr(avg_spectra, "power_sum", out_of_memory)
    argv = [*CALC, str(bad / "x.npz"), "--source", str(dataset), "--batch-size", "4"]
    line = expect_usage_error("avg_spectra", avg_spectra.main, argv, "--interp 4: spectra of 64x64 (16 pixels x 4) "
                              "in batches of 4 need more memory than there is; use a smaller --interp or --batch-size",
                              bad, capsys)
    assert line.endswith("--batch-size"), line


def test_a_figure_too_large_for_memory_is_one_line_and_leaves_no_folder(bad, capsys, monkeypatch):
    """The drawing runs out of memory (a large --dpi on a small machine): one line, and the folders --save
    named that the call created are removed again."""
    from matplotlib.figure import Figure

    def out_of_memory(*args, **kwargs):
        raise MemoryError("std::bad_alloc")

    monkeypatch.setattr(Figure, "savefig", out_of_memory)
    argv = ["heatmap", str(bad / "s16.npz"), "--dpi", "5000", "--save", str(bad / "made" / "deep" / "h.png")]
    expect_usage_error("avg_spectra", avg_spectra.main, argv, "--dpi 5000: the figure needs more memory than there "
                       "is; use a smaller --dpi", bad, capsys)
