"""StyleGAN3's equivariance metrics (NVIDIA's stylegan3 ``metrics/equivariance.py``): EQ-T (integer
translation), EQ-T_frac (fractional translation) and EQ-R (rotation), the PSNR in dB (peak 2: images in
[-1, 1]) between the generator's output for a transformed input and the transformed output, over the pixels
both define.

As NVIDIA's: samples come in groups of 4 (its batch) that share one random transform, translations uniform
in +-0.125 of the image (EQ-T rounded to whole pixels), rotations uniform in +-180 degrees; the reference is
the untransformed image shifted by whole pixels (EQ-T), resampled with a 6-tap Lanczos kernel (EQ-T_frac), or
rotated by the band-limited affine filter (4x upsampling with a windowed sinc designed by FFT, bilinear
sampling) and compared with the transformed output filtered by the same kernel's one-sided "pseudo
rotation" (EQ-R); squared errors and mask counts are summed in float64 over all samples. Each group's
transform and its filters are drawn and designed on the host (NumPy float64; NVIDIA designs them on the GPU
in float32) from ``RandomState([seed, group])``, and enter the one jitted function as inputs, so nothing
recompiles.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from stylegan_jax.metrics.features import MetricOptions, compiled, generator_batches, run_batches

#: The reference's inputs of each kind, in the order the jitted step takes them.
INPUTS = {"eqt_int": ("ix", "iy"), "eqt_frac": ("ix", "iy", "gx", "gy"), "eqr": ("f", "px", "py", "pseudo")}
#: NVIDIA's batch: the samples that share one random transform.
GROUP = 4
TRANSLATE_MAX, ROTATE_MAX = 0.125, 1.0  # fractions of the image; of pi
LANCZOS_A = 3


def sinc(x: np.ndarray) -> np.ndarray:
    """sin(pi x) / (pi x), 1 at 0."""
    y = np.abs(x) * np.pi
    return np.where(y < 1e-30, 1.0, np.sin(y) / np.maximum(y, 1e-30))


def lanczos_window(x: np.ndarray, a: int) -> np.ndarray:
    x = np.abs(x) / a
    return np.where(x < 1, sinc(x), 0.0)


def rotation_matrix(angle: float) -> np.ndarray:
    """NVIDIA's 3x3 rotation: [[cos, sin, 0], [-sin, cos, 0], [0, 0, 1]]."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, s, 0], [-s, c, 0], [0, 0, 1]])


def lanczos_taps(frac: float, a: int = LANCZOS_A) -> np.ndarray:
    """The fractional translation's 2a taps (offsets -(a-1) .. a) for a shift's fractional part, normalised."""
    taps = np.arange(2 * a) - (a - 1)
    f = sinc(taps - frac) * sinc((taps - frac) / a)
    return f / f.sum()


def affine_bandlimit_filter(mat: np.ndarray, a: int = 3, amax: int = 16, aflt: int = 64, up: int = 4,
                            cutoff_in: float = 1, cutoff_out: float = 1) -> np.ndarray:
    """NVIDIA's ``construct_affine_bandlimit_filter``: the convolution of an axis-aligned and an oriented 2-D
    sinc, windowed by the convolution of two Lanczos windows, as polyphase taps [2 amax up - 1] squared."""
    if not a <= amax < aflt:
        raise ValueError(f"need a <= amax < aflt, got {a}, {amax}, {aflt}")
    taps = np.roll((np.arange(aflt * up * 2 - 1) + 1) / up - aflt, 1 - aflt * up)
    yi, xi = np.meshgrid(taps, taps, indexing="ij")
    xo, yo = np.moveaxis(np.stack([xi, yi], axis=2) @ mat[:2, :2].T, 2, 0)
    fi = sinc(xi * cutoff_in) * sinc(yi * cutoff_in)
    fo = sinc(xo * cutoff_out) * sinc(yo * cutoff_out)
    f = np.fft.ifftn(np.fft.fftn(fi) * np.fft.fftn(fo)).real
    wi = lanczos_window(xi, a) * lanczos_window(yi, a)
    wo = lanczos_window(xo, a) * lanczos_window(yo, a)
    f = f * np.fft.ifftn(np.fft.fftn(wi) * np.fft.fftn(wo)).real
    c = (aflt - amax) * up
    f = np.roll(f, (aflt * up - 1,) * 2, axis=(0, 1))[c:-c, c:-c]
    f = np.pad(f, ((0, 1), (0, 1))).reshape(amax * 2, up, amax * 2, up)
    f = f / f.sum(axis=(0, 2), keepdims=True) / up**2
    return f.reshape(amax * 2 * up, amax * 2 * up)[:-1, :-1]


def rotation_sampling(mat: np.ndarray, height: int, width: int, up: int, pad: int) -> tuple[np.ndarray, np.ndarray]:
    """Where NVIDIA's ``apply_affine_transformation`` samples the ``up``-times upsampled image (padded by
    ``pad``): pixel coordinates (x [H, W], y [H, W]) of torch's ``affine_grid``/``grid_sample`` with
    align_corners False."""
    theta = np.linalg.inv(mat)
    theta[:2, 2] *= 2
    theta[0, 2] += 1 / up / width
    theta[1, 2] += 1 / up / height
    theta[0, :] *= width / (width + pad / up * 2)
    theta[1, :] *= height / (height + pad / up * 2)
    xn = (2 * np.arange(width) + 1) / width - 1
    yn = (2 * np.arange(height) + 1) / height - 1
    gx = theta[0, 0] * xn[None, :] + theta[0, 1] * yn[:, None] + theta[0, 2]
    gy = theta[1, 0] * xn[None, :] + theta[1, 1] * yn[:, None] + theta[1, 2]
    size_y, size_x = height * up + 2 * pad, width * up + 2 * pad
    return ((gx + 1) * size_x - 1) / 2, ((gy + 1) * size_y - 1) / 2


# ------------------------------------------------------------------------------------------------ on device

def shift(x: jax.Array, dy: jax.Array, dx: jax.Array) -> jax.Array:
    """[H, W, C] -> out[u, v] = x[u - dy, v - dx], zero where that is outside (dy, dx traced ints)."""
    h, w = x.shape[:2]
    rows, cols = jnp.arange(h)[:, None, None], jnp.arange(w)[None, :, None]
    inside = (rows - dy >= 0) & (rows - dy < h) & (cols - dx >= 0) & (cols - dx < w)
    return jnp.where(inside, jnp.roll(x, (dy, dx), axis=(0, 1)), 0)


def fractional_translation(x: jax.Array, ix: jax.Array, iy: jax.Array, gx: jax.Array,
                           gy: jax.Array) -> tuple[jax.Array, jax.Array]:
    """NVIDIA's ``apply_fractional_translation`` of one image [H, W, C] by (ix + fx, iy + fy) pixels, its
    `lanczos_taps` gx, gy given: (image, mask)."""
    a = gx.shape[0] // 2
    offsets = np.arange(2 * a) - (a - 1)
    y = sum(gx[j] * shift(x, 0, ix + int(o)) for j, o in enumerate(offsets))
    y = sum(gy[j] * shift(y, iy + int(o), 0) for j, o in enumerate(offsets))
    h, w = x.shape[:2]
    rows, cols = jnp.arange(h)[:, None, None], jnp.arange(w)[None, :, None]
    mask = (cols >= ix + a) & (cols < w + ix - (a - 1)) & (rows >= iy + a) & (rows < h + iy - (a - 1))
    return y, jnp.broadcast_to(mask, x.shape).astype(x.dtype)


def _bilinear(x: jax.Array, px: jax.Array, py: jax.Array) -> jax.Array:
    """grid_sample(bilinear, zeros) of [H, W, C] at pixel coordinates px, py [h, w]."""
    h, w = x.shape[:2]
    x0, y0 = jnp.floor(px), jnp.floor(py)
    out = 0
    for oy in (0, 1):
        for ox in (0, 1):
            xi, yi = x0 + ox, y0 + oy
            weight = (1 - jnp.abs(px - xi)) * (1 - jnp.abs(py - yi))
            inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
            value = x[jnp.clip(yi, 0, h - 1).astype(jnp.int32), jnp.clip(xi, 0, w - 1).astype(jnp.int32)]
            out = out + jnp.where(inside[..., None], value * weight[..., None], 0)
    return out


def fractional_rotation(x: jax.Array, f: jax.Array, px: jax.Array, py: jax.Array, up: int = 4):
    """NVIDIA's ``apply_fractional_rotation`` of [H, W, C], the filter f [k, k] (k = 2 amax up - 1) and the
    sampling coordinates of `rotation_sampling` given: (image, mask)."""
    pad = f.shape[0] // 2
    y = _pad_upsample(x, f, up, pad)
    z = _bilinear(y, px, py)
    size_y, size_x = y.shape[:2]
    c = pad * 2 + 1
    ny, nx = jnp.round(py), jnp.round(px)  # grid_sample nearest: round half to even
    inside = (nx >= c) & (nx < size_x - c) & (ny >= c) & (ny < size_y - c)
    return z, jnp.broadcast_to(inside[..., None], z.shape).astype(x.dtype)


def _pad_upsample(x: jax.Array, f: jax.Array, up: int, pad: int) -> jax.Array:
    """NVIDIA's ``upsample2d(x, f, up, padding=pad)`` with a traced 2-D filter: [H up + 2 pad, W up + 2 pad, C]."""
    h, w, c = x.shape
    k = f.shape[0]
    u = jnp.zeros((h, up, w, up, c), x.dtype).at[:, 0, :, 0].set(x).reshape(h * up, w * up, c)
    lo, hi = pad + (k + up - 1) // 2, pad + (k - up) // 2
    kernel = jnp.broadcast_to((f[::-1, ::-1] * up**2)[:, :, None, None].astype(x.dtype), (k, k, 1, c))
    y = jax.lax.conv_general_dilated(u[None], kernel, (1, 1), [(lo, hi), (lo, hi)],
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=c,
                                     precision=jax.lax.Precision.HIGHEST)
    return y[0]


def pseudo_rotation(x: jax.Array, f: jax.Array) -> tuple[jax.Array, jax.Array]:
    """NVIDIA's ``apply_fractional_pseudo_rotation``: [H, W, C] filtered (same size) by f [k, k]; the mask
    drops k // 2 pixels at each border."""
    k = f.shape[0]
    kernel = jnp.broadcast_to(f[::-1, ::-1, None, None].astype(x.dtype), (k, k, 1, x.shape[-1]))
    y = jax.lax.conv_general_dilated(x[None], kernel, (1, 1), [(k // 2, (k - 1) // 2)] * 2,
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=x.shape[-1],
                                     precision=jax.lax.Precision.HIGHEST)[0]
    h, w = x.shape[:2]
    c = k // 2
    rows, cols = jnp.arange(h)[:, None, None], jnp.arange(w)[None, :, None]
    mask = (rows >= c) & (rows < h - c) & (cols >= c) & (cols < w - c)
    return y, jnp.broadcast_to(mask, y.shape).astype(x.dtype)


# ------------------------------------------------------------------------------------------------ the metric

@dataclasses.dataclass(frozen=True)
class GroupTransform:
    """What one group of samples needs: the generator's input transform [3, 3] and the reference's inputs."""

    matrix: np.ndarray
    inputs: dict


def draw_group(kind: str, seed: int, group: int, height: int, width: int) -> GroupTransform:
    """Group ``group``'s random transform for ``kind`` ('eqt_int', 'eqt_frac', 'eqr') and what its reference
    needs, from ``RandomState([seed, group])``."""
    rng = np.random.RandomState([seed, group])
    m = np.eye(3)
    if kind in ("eqt_int", "eqt_frac"):
        t = (rng.rand(2) * 2 - 1) * TRANSLATE_MAX
        if kind == "eqt_int":
            t = np.round(t * width) / width  # NVIDIA rounds with G.img_resolution (square images)
        m[:2, 2] = -t
        tx, ty = t[0] * width, t[1] * height
        if kind == "eqt_int":
            return GroupTransform(m, dict(ix=np.int32(np.round(tx)), iy=np.int32(np.round(ty))))
        ix, iy = np.floor(tx), np.floor(ty)
        return GroupTransform(m, dict(ix=np.int32(ix), iy=np.int32(iy), gx=lanczos_taps(tx - ix).astype(np.float32),
                                      gy=lanczos_taps(ty - iy).astype(np.float32)))
    angle = (rng.rand() * 2 - 1) * (ROTATE_MAX * np.pi)
    f = affine_bandlimit_filter(rotation_matrix(angle), a=LANCZOS_A, amax=LANCZOS_A * 2)
    px, py = rotation_sampling(rotation_matrix(angle), height, width, 4, f.shape[0] // 2)
    pseudo = affine_bandlimit_filter(rotation_matrix(-angle), a=LANCZOS_A, amax=LANCZOS_A * 2, up=1)
    return GroupTransform(rotation_matrix(-angle), dict(f=f.astype(np.float32), px=px.astype(np.float32),
                                                        py=py.astype(np.float32), pseudo=pseudo.astype(np.float32)))


def squared_errors(kind: str, orig: jax.Array, img: jax.Array, inputs: dict) -> tuple[jax.Array, jax.Array]:
    """(sum of masked squared differences, sum of the mask) of one sample [H, W, C]."""
    if kind == "eqt_int":
        ref, mask = shift(orig, inputs["iy"], inputs["ix"]), shift(jnp.ones_like(orig), inputs["iy"], inputs["ix"])
        other = img
    elif kind == "eqt_frac":
        ref, mask = fractional_translation(orig, inputs["ix"], inputs["iy"], inputs["gx"], inputs["gy"])
        other = img
    else:
        ref, ref_mask = fractional_rotation(orig, inputs["f"], inputs["px"], inputs["py"])
        other, pseudo_mask = pseudo_rotation(img, inputs["pseudo"])
        mask = ref_mask * pseudo_mask
    return jnp.sum(jnp.square(ref - other) * mask), jnp.sum(mask)


def compute_equivariance(opts: MetricOptions, num_samples: int, kind: str,
                         input_transform: Callable[[dict, jax.Array], dict]) -> float:
    """The PSNR (dB) of equivariance ``kind`` over ``num_samples`` samples of ``opts.G``, whose variables take
    an input transform [3, 3] through ``input_transform(variables, matrix)`` (the family's)."""
    G, res, names = opts.G, opts.G.img_resolution, INPUTS[kind]

    def step(G_vars, z, c, idx, matrices, *arrays):
        ws = G.apply(G_vars, z, c, method="map")

        def one(w, matrix, *arrays):
            # NVIDIA's EQ metrics run G with force_fp32: reduced-precision rounding would lower the PSNR.
            orig = G.apply(input_transform(G_vars, jnp.eye(3)), w[None], force_fp32=True, method="synthesize")[0]
            img = G.apply(input_transform(G_vars, matrix), w[None], force_fp32=True, method="synthesize")[0]
            return jnp.stack(squared_errors(kind, orig, img, dict(zip(names, arrays, strict=True))))

        return jax.vmap(one)(ws, matrices, *arrays)

    def batches():
        for z, c, idx in generator_batches(opts, num_samples):
            groups = [draw_group(kind, opts.seed, int(g), res, res) for g in idx // GROUP]
            yield (z, c, idx, np.stack([g.matrix for g in groups]).astype(np.float32),
                   *(np.stack([g.inputs[k] for g in groups]) for k in names))

    fn = compiled(("equivariance", kind, repr(G), input_transform), step)
    sums = np.zeros(2, np.float64)
    for out in run_batches(fn, opts.G_vars, batches(), num_samples, opts.global_batch, f"eq {kind}",
                           opts.progress):
        sums += np.asarray(out, np.float64).sum(axis=0)
    with np.errstate(divide="ignore"):  # an exactly equivariant generator: infinite PSNR
        return float(np.log10(2) * 20 - np.log10(sums[0] / sums[1]) * 10)
