"""Network pickles (NVIDIA's, R3GAN's) -> our families' constructor kwargs and variables, one module per source
format:

- `torch_stylegan2`: PyTorch snapshots of stylegan2-ada-pytorch and of stylegan3's StyleGAN2
  (``{"G", "D", "G_ema", ...}``) -> `stylegan_jax.models.stylegan2`;
- `tf_stylegan2`: TF-era StyleGAN2 / StyleGAN2-ADA ``(G, D, Gs)`` -> `stylegan_jax.models.stylegan2`;
- `torch_stylegan3`: PyTorch snapshots of stylegan3's StyleGAN3 (configs T and R) -> `stylegan_jax.models.stylegan3`;
- `tf_stylegan1`: TF StyleGAN1 ``(G, D, Gs)`` built by ``G_style`` / ``D_basic`` -> `stylegan_jax.models.stylegan1`;
- `torch_r3gan`: brownvc/R3GAN's training snapshots (plainly pickled ``torch.nn.Module`` trees, read through
  the stand-ins it adds to the allow-list) -> `stylegan_jax.models.r3gan`;

with what they share in `common`. The file is read by `stylegan_jax.io.network_pickle` (restricted
unpickling into inert stand-ins: nothing from the file runs); `load_network_pkl` reads and dispatches.
"""

from __future__ import annotations

import os
from typing import Any

from stylegan_jax.convert import tf_stylegan1, tf_stylegan2, torch_r3gan, torch_stylegan2, torch_stylegan3
from stylegan_jax.errors import first_line
from stylegan_jax.io.network_pickle import EXPECTED, NetworkPickleError, TFNetwork, read_network_pickle


def load_network_pkl(path: str | os.PathLike) -> dict[str, Any]:
    """Reads and converts a network pickle (NVIDIA's or R3GAN's).

    Returns ``{"G_kwargs", "D_kwargs", "G", "G_ema", "D", "metadata"}``: our Generator/Discriminator
    constructor kwargs (JSON-able) and variable trees ``{"params": ..., "buffers": ...}`` of NumPy arrays
    (``G``/``D``/``D_kwargs`` only when the pickle has them); ``metadata`` holds ``format`` (which code wrote
    the pickle), ``source`` (``path``) and, for other families than StyleGAN2, ``model``. Raises
    `NetworkPickleError` (one line naming ``path``).
    """
    data = read_network_pickle(path, torch_r3gan.PICKLE_GLOBALS)
    try:
        if isinstance(data, tuple) and len(data) == 3 and all(isinstance(n, TFNetwork) for n in data):
            stylegan1 = tf_stylegan1.is_tf_stylegan1(data)
            out = tf_stylegan1.convert_tf_stylegan1(data) if stylegan1 else tf_stylegan2.convert_tf_stylegan2(data)
        elif torch_r3gan.is_r3gan_snapshot(data):
            out = torch_r3gan.convert_r3gan(data)
        elif torch_stylegan2.is_torch_pickle(data):
            stylegan3 = torch_stylegan3.is_stylegan3(data["G_ema"])
            out = torch_stylegan3.convert_torch3(data) if stylegan3 else torch_stylegan2.convert_torch(data)
        else:
            found = f"dict with keys {sorted(map(str, data))[:6]}" if isinstance(data, dict) else type(data).__name__
            raise NetworkPickleError(f"found a {found}, not G/D/G_ema networks")
    except NetworkPickleError as e:
        raise NetworkPickleError(f"{path}: {e}; {EXPECTED}") from None
    except Exception as e:  # noqa: BLE001 - a hostile or damaged tree (a cycle, a list for a dict): one line
        raise NetworkPickleError(f"{path}: a damaged network ({type(e).__name__}: {first_line(e)}); "
                                 f"{EXPECTED}") from None
    out["metadata"]["source"] = os.fspath(path)
    return out


__all__ = ["NetworkPickleError", "load_network_pkl"]
