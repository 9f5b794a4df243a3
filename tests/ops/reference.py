"""Float64 NumPy references for the ops, written directly from the definitions (loops over taps)."""

import numpy as np


def upfirdn2d_ref(x, f, up=(1, 1), down=(1, 1), pad=(0, 0, 0, 0), flip_filter=False, gain=1.0):
    """Zero-insert, pad/crop, correlate with the (flipped) filter, keep every down-th sample. x: NHWC."""
    (upx, upy), (dx, dy) = up, down
    px0, px1, py0, py1 = pad
    n, h, w, c = x.shape
    u = np.zeros((n, h * upy, w * upx, c))
    u[:, ::upy, ::upx] = x
    u = np.pad(u, ((0, 0), (max(py0, 0), max(py1, 0)), (max(px0, 0), max(px1, 0)), (0, 0)))
    u = u[:, max(-py0, 0) : u.shape[1] - max(-py1, 0), max(-px0, 0) : u.shape[2] - max(-px1, 0)]
    f = np.ones((1, 1)) if f is None else np.asarray(f, np.float64)
    f = (np.outer(f, f) if f.ndim == 1 else f) * gain
    if not flip_filter:
        f = f[::-1, ::-1]
    fh, fw = f.shape
    oh, ow = u.shape[1] - fh + 1, u.shape[2] - fw + 1
    y = np.zeros((n, oh, ow, c))
    for i in range(fh):
        for j in range(fw):
            y += f[i, j] * u[:, i : i + oh, j : j + ow]
    return y[:, ::dy, ::dx]


def correlate_ref(x, w, groups=1):
    """VALID correlation of NHWC x with OIHW w (torch's conv2d), by loops over taps and groups."""
    n, h, wd, _ = x.shape
    o, i, kh, kw = w.shape
    oh, ow = h - kh + 1, wd - kw + 1
    y = np.zeros((n, oh, ow, o))
    og = o // groups
    for g in range(groups):
        xs = x[..., g * i : (g + 1) * i]
        for a in range(kh):
            for b in range(kw):
                y[..., g * og : (g + 1) * og] += xs[:, a : a + oh, b : b + ow] @ w[g * og : (g + 1) * og, :, a, b].T
    return y


def conv2d_resample_ref(x, w, f, up=1, down=1, padding=0, flip_weight=True, groups=1, flip_filter=False):
    """NVIDIA's definition: FIR-upsample (gain up^2) with padding (a number or [x0, x1, y0, y1]), correlate,
    FIR-downsample; ``f`` 1-D (separable), 2-D or None (identity)."""
    f = np.ones((1, 1)) if f is None else np.asarray(f, np.float64)
    fh, fw = f.shape[0], f.shape[-1]
    px0, px1, py0, py1 = (padding,) * 4 if np.isscalar(padding) else padding
    if up > 1:
        px0, px1 = px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2
        py0, py1 = py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2
    if down > 1:
        px0, px1 = px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2
        py0, py1 = py0 + (fh - down + 1) // 2, py1 + (fh - down) // 2
    wc = w if flip_weight else w[:, :, ::-1, ::-1]
    fu = f if up > 1 else np.ones((1, 1))
    x = upfirdn2d_ref(x, fu, (up, up), (1, 1), (px0, px1, py0, py1), flip_filter=flip_filter, gain=up * up)
    y = correlate_ref(x, wc, groups)
    if down > 1:
        y = upfirdn2d_ref(y, f, (1, 1), (down, down), flip_filter=flip_filter)
    return y
