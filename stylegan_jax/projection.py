"""Projecting target images into a generator's W or W+: NVIDIA's projector.py algorithm, batched over targets.

For each target, ``w`` starts at the mean of 10,000 mapped latents (``RandomState(123)``) and Adam (0.9,
0.999) moves it, together with the synthesis's constant noise maps for a network that has them, to minimise
``distance(G(w + w_noise), target) + 1e5 * noise_regularization(noise)``:

- learning rate 0.1 with a linear warm-up over the first 5% of the steps and a cosine ramp-down over the
  last 25% (`learning_rate`), so step 0 moves nothing, as NVIDIA's;
- ``w_noise`` ~ N(0, (0.05 * w_std * max(0, 1 - t / 0.75)^2)^2) per step (`w_noise_scale`), w_std the
  scalar spread of the mapped latents;
- after each step every noise map is renormalised to zero mean and unit variance;
- the distance is taken at most at 256x256 (larger images are area-downsampled, as NVIDIA's ``F.interpolate
  (mode='area')``): LPIPS from NVIDIA's ``vgg16.pt`` (``"lpips"``), or a pixel L2 that needs no file
  (``"l2"``: the mean squared difference of the [-1, 1] images plus that of their 4x average-pooled copies).

``space="w"`` optimises one w per target (NVIDIA's), repeated to every layer; ``"wplus"`` one w per layer,
each initialised at the same mean. Every target has its own Adam state, noise maps and random stream (the seed's
key folded with the target's index), so a batch of targets gives what separate projections give. One jitted
`Projector.step` advances every target by one step; the targets are sharded over the devices.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import traverse_util
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from stylegan_jax.metrics.features import to_rgb
from stylegan_jax.ops.area_resize import area_resize
from stylegan_jax.sampling import pad_rows

SPACES = ("w", "wplus")
LOSSES = ("lpips", "l2")
#: Images above this size are area-downsampled to it before the distance (VGG was trained on 224x224).
DISTANCE_RESOLUTION = 256
NOISE_BUFFER = "noise_const"


@dataclasses.dataclass(frozen=True)
class ProjectionSettings:
    """NVIDIA's ``project()`` keyword arguments and defaults, plus the space."""

    num_steps: int = 1000
    w_avg_samples: int = 10000
    initial_learning_rate: float = 0.1
    initial_noise_factor: float = 0.05
    lr_rampdown_length: float = 0.25
    lr_rampup_length: float = 0.05
    noise_ramp_length: float = 0.75
    regularize_noise_weight: float = 1e5
    space: str = "w"


def learning_rate(step: int, s: ProjectionSettings) -> float:
    """The learning rate of ``step`` (0-based): warm-up to ``initial_learning_rate`` over the first
    ``lr_rampup_length`` of the run, cosine ramp-down over the last ``lr_rampdown_length``. Computed on the host
    in float64, as NVIDIA's (in float32 the cosine ramp loses digits near its end), and passed to the step."""
    t = step / s.num_steps
    ramp = min(1.0, (1.0 - t) / s.lr_rampdown_length)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return s.initial_learning_rate * ramp * min(1.0, t / s.lr_rampup_length)


def w_noise_scale(step: int, w_std: float, s: ProjectionSettings) -> float:
    """The standard deviation of the noise added to w at ``step``: quadratic decay to 0 at ``noise_ramp_length``
    (host float64, as `learning_rate`)."""
    t = step / s.num_steps
    return w_std * s.initial_noise_factor * max(0.0, 1.0 - t / s.noise_ramp_length) ** 2


def noise_regularization(noise_maps: dict[str, jax.Array]) -> jax.Array:
    """NVIDIA's multi-scale autocorrelation penalty of noise maps [H, W]: at each scale, the squared mean of the
    map times itself shifted by one pixel (cyclically) along x and along y; halved by 2x2 average pooling until
    the map is 8 pixels high or less (that scale included)."""
    total = jnp.float32(0)
    for noise in noise_maps.values():
        while True:
            total += jnp.square(jnp.mean(noise * jnp.roll(noise, 1, axis=1)))
            total += jnp.square(jnp.mean(noise * jnp.roll(noise, 1, axis=0)))
            if noise.shape[0] <= 8:
                break
            h, w = noise.shape
            noise = noise.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    return total


def normalize_noise(noise_maps: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Each map shifted to zero mean and scaled to unit mean square (NVIDIA's renormalisation after a step)."""

    def one(noise):
        noise = noise - noise.mean()
        return noise * jax.lax.rsqrt(jnp.square(noise).mean())

    return {name: one(noise) for name, noise in noise_maps.items()}


def area_downsample(images: jax.Array, size: int = DISTANCE_RESOLUTION) -> jax.Array:
    """[N, H, W, C] -> [N, size, size, C] for square images, torch's ``mode='area'`` (`area_resize`); W x H
    images keep their aspect ratio: the short side becomes ``size``, the long side its rounded share;
    images whose short side is no larger than ``size`` are returned unchanged."""
    _, h, w, _ = images.shape
    short = min(h, w)
    if short <= size:
        return images
    return area_resize(images, round(h * size / short), round(w * size / short))


def l2_embedding(images: jax.Array) -> jax.Array:
    """[N, H, W, C] in [0, 255] -> [N, D] whose squared distance is the mean squared difference of the [-1, 1]
    images plus that of their copies area-resized to a quarter of each side (4x4 blocks where the sides divide)."""
    x = images / 127.5 - 1
    n, h, w, c = x.shape
    pooled = area_resize(x, max(round(h / 4), 1), max(round(w / 4), 1))
    return jnp.concatenate([x.reshape(n, -1) / math.sqrt(h * w * c),
                            pooled.reshape(n, -1) / math.sqrt(pooled[0].size)], axis=1)


@dataclasses.dataclass(frozen=True)
class Embedding:
    """``apply(params, images [N, H, W, C] in [0, 255]) -> [N, D]``, whose squared Euclidean distances are the
    projection distance; ``params`` are passed to the jitted step as an argument (not baked in as constants)."""

    apply: Callable[[Any, jax.Array], jax.Array]
    params: Any = None


def distance_embedding(loss: str, vgg: Any = None) -> Embedding:
    """The `Embedding` of a ``--loss``: after `area_downsample`, grayscale repeated to RGB and NVIDIA's VGG16
    LPIPS embedding (``vgg``: a loaded `stylegan_jax.metrics.detectors.Detector`) for ``"lpips"``,
    `l2_embedding` for ``"l2"``."""
    if loss == "lpips":
        if vgg is None:
            raise ValueError("the lpips distance needs the VGG16 detector")
        return Embedding(lambda params, images: vgg.module.apply(
            {"params": params}, to_rgb(area_downsample(images)), method="lpips_embedding"), vgg.params)
    if loss == "l2":
        return Embedding(lambda params, images: l2_embedding(area_downsample(images)))
    raise ValueError(f"unknown projection loss {loss!r}; expected one of {LOSSES}")


def noise_maps(variables: dict) -> dict[str, jax.Array]:
    """The synthesis's constant noise maps {"path/to/noise_const": [H, W]} (empty for a network without noise)."""
    flat = traverse_util.flatten_dict(variables.get("buffers", {}), sep="/")
    return {name: value for name, value in flat.items() if name.rsplit("/", 1)[-1] == NOISE_BUFFER}


def with_noise_maps(variables: dict, maps: dict[str, jax.Array]) -> dict:
    """``variables`` with the noise maps of `noise_maps` replaced by ``maps``."""
    if not maps:
        return variables
    flat = traverse_util.flatten_dict(variables["buffers"], sep="/")
    flat.update(maps)
    return {**variables, "buffers": traverse_util.unflatten_dict(flat, sep="/")}


def initial_noise(key: jax.Array, maps: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """A target's starting noise maps: N(0, 1) of each map's shape (NVIDIA's ``randn_like``), from ``key``."""
    keys = jax.random.split(key, max(len(maps), 1))[: len(maps)]
    return {name: jax.random.normal(k, m.shape) for k, (name, m) in zip(keys, maps.items(), strict=True)}


def w_perturbation(key: jax.Array, step: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Step ``step``'s N(0, 1) draw of ``shape`` (w's) from a target's ``key``, which `w_noise_scale` scales
    into the step's w noise."""
    return jax.random.normal(jax.random.fold_in(key, step), shape)


def w_statistics(G: nn.Module, variables: dict, c: np.ndarray, samples: int = 10000) -> tuple[np.ndarray, float]:
    """(w_avg [w_dim], w_std) of ``samples`` latents ``RandomState(123).randn(samples, z_dim)`` mapped with the
    label row ``c`` [1, c_dim], as NVIDIA computes them: the mean of the first ws, and the root of their mean
    squared distance to it summed over the w dimensions."""
    z = np.random.RandomState(123).randn(samples, G.z_dim).astype(np.float32)
    mapped = jax.jit(lambda v, z, c: G.apply(v, z, c, method="map")[:, 0])(variables, z, np.repeat(c, samples, 0))
    w = np.asarray(mapped, np.float64)
    w_avg = w.mean(axis=0)
    return w_avg.astype(np.float32), float(np.sqrt(np.square(w - w_avg).sum() / samples))


def to_projector_uint8(images: jax.Array) -> jax.Array:
    """[-1, 1] images -> uint8 as NVIDIA's projector writes them: ``(x + 1) * 255 / 2`` clamped, truncated
    (`stylegan_jax.images.to_uint8`, generate's conversion, adds 0.5 more: the two differ by at most 1 level)."""
    return jnp.clip((images + 1) * (255 / 2), 0, 255).astype(jnp.uint8)


def target_mesh(num_targets: int) -> Mesh:
    """A 'data' mesh for a batch of targets: every device when there are at least as many targets (the batch
    padded to a multiple), else one device per target."""
    devices = jax.devices()
    return Mesh(np.array(devices[: min(len(devices), num_targets)]), ("data",))


@dataclasses.dataclass
class ProjectionResult:
    """Per target: ``ws`` [N, num_ws, w_dim] (the final w, repeated over the layers for ``space='w'``),
    ``distance`` and ``loss`` [N] of the last step (before its update, as NVIDIA logs them), and ``w_steps``
    [N, num_steps, num_ws, w_dim] (the ws after each step) when asked for."""

    ws: np.ndarray
    distance: np.ndarray
    loss: np.ndarray
    w_steps: np.ndarray | None = None


class Projector:
    """Projects batches of targets into ``G``'s W or W+ (see the module docstring).

    ``G`` is the family's generator module, ``variables`` its G_ema variables, ``c`` the label row [1, c_dim]
    every target is projected with, ``embed`` a `distance_embedding`.
    """

    def __init__(self, G: nn.Module, variables: dict, c: np.ndarray, embed: Embedding,
                 settings: ProjectionSettings = ProjectionSettings()) -> None:
        if settings.space not in SPACES:
            raise ValueError(f"unknown projection space {settings.space!r}; expected one of {SPACES}")
        self.G, self.variables, self.embed, self.settings = G, variables, embed, settings
        self.num_ws = G.num_ws
        self.w_avg, self.w_std = w_statistics(G, variables, c, settings.w_avg_samples)
        self.optimizer = optax.scale_by_adam(b1=0.9, b2=0.999, eps=1e-8)
        self._step = jax.jit(jax.vmap(self._one_step, in_axes=(None, None, None, None, None, 0, 0, 0)),
                             donate_argnums=(5,))
        self._embed = jax.jit(embed.apply)
        # proj.png and the video in float32, as generate renders the projected ws (the steps: in the network's
        # half-precision layers, as NVIDIA's optimisation runs in its float16)
        self._render = jax.jit(lambda v, ws: to_projector_uint8(G.apply(v, ws, "const", True, method="synthesize")))

    def _synthesize(self, variables: dict, w: jax.Array) -> jax.Array:
        """One target's w [1 or num_ws, w_dim] -> its image [H, W, C] in [0, 255] (const noise)."""
        ws = jnp.broadcast_to(w, (self.num_ws, w.shape[-1]))[None]
        return (self.G.apply(variables, ws, "const", method="synthesize")[0] + 1) * (255 / 2)

    def init_state(self, key: jax.Array) -> dict:
        """One target's optimisation state: w at w_avg, noise maps N(0, 1) from ``key``, Adam's moments."""
        rows = self.num_ws if self.settings.space == "wplus" else 1
        w = jnp.broadcast_to(jnp.asarray(self.w_avg), (rows, self.w_avg.shape[0]))
        params = {"w": w, "noise": initial_noise(key, noise_maps(self.variables))}
        return {"params": params, "adam": self.optimizer.init(params)}

    def _one_step(self, variables: dict, embed_params: Any, step: jax.Array, lr: jax.Array, noise_scale: jax.Array,
                  state: dict, target: jax.Array, key: jax.Array) -> tuple[dict, tuple[jax.Array, ...]]:
        """One target's Adam step: (variables, embedding params, step, its learning rate and w noise scale,
        state, target embedding [D], key) -> (state, (distance, loss, ws [num_ws, w_dim] after the step))."""
        s = self.settings
        w_noise = w_perturbation(key, step, state["params"]["w"].shape) * noise_scale

        def loss_fn(params):
            image = self._synthesize(with_noise_maps(variables, params["noise"]), params["w"] + w_noise)
            dist = jnp.sum(jnp.square(self.embed.apply(embed_params, image[None])[0] - target))
            return dist + noise_regularization(params["noise"]) * s.regularize_noise_weight, dist

        (loss, dist), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["params"])
        updates, adam = self.optimizer.update(grads, state["adam"])
        params = jax.tree.map(lambda p, u: p - lr * u, state["params"], updates)
        params["noise"] = normalize_noise(params["noise"])
        ws = jnp.broadcast_to(params["w"], (self.num_ws, params["w"].shape[-1]))
        return {"params": params, "adam": adam}, (dist, loss, ws)

    def target_embeddings(self, targets: np.ndarray) -> jax.Array:
        """uint8 targets [N, H, W, C] (G's resolution and channels) -> their distance embeddings [N, D]."""
        return self._embed(self.embed.params, jnp.asarray(targets, jnp.float32))

    def steps(self, targets: np.ndarray, seed: int,
              first_index: int = 0) -> Iterator[tuple[int, np.ndarray, np.ndarray, jax.Array]]:
        """Runs the projection of uint8 ``targets`` [N, H, W, C]; yields ``(step, distance [N], loss [N],
        ws [N, num_ws, w_dim])`` after each step (ws on the devices). Target ``i`` uses the key
        ``fold_in(key(seed), first_index + i)`` whatever the batch, so its result does not depend on the others
        (``first_index``: where these targets start in a larger set projected in parts)."""
        n = len(targets)
        mesh = target_mesh(n)
        size = -(-n // mesh.size) * mesh.size
        index = np.minimum(np.arange(size), n - 1)  # padding repeats the last target
        sharded = NamedSharding(mesh, P("data"))
        keys = jax.vmap(lambda i: jax.random.split(jax.random.fold_in(jax.random.key(seed), i)))(
            jnp.asarray(first_index + index))
        state = jax.device_put(jax.jit(jax.vmap(self.init_state))(keys[:, 0]), sharded)
        target = jax.device_put(self.target_embeddings(targets[index]), sharded)
        step_keys = jax.device_put(keys[:, 1], sharded)
        replicated = NamedSharding(mesh, P())
        variables, embed_params = jax.device_put((self.variables, self.embed.params), replicated)
        for step in range(self.settings.num_steps):
            lr = jnp.float32(learning_rate(step, self.settings))
            noise_scale = jnp.float32(w_noise_scale(step, self.w_std, self.settings))
            state, (dist, loss, ws) = self._step(variables, embed_params, jnp.int32(step), lr, noise_scale, state,
                                                 target, step_keys)
            dist, loss = jax.device_get((dist, loss))  # one transfer per step, for the progress bar
            yield step, dist[:n], loss[:n], ws[:n]

    def project(self, targets: np.ndarray, seed: int, keep_steps: bool = False,
                progress: Callable[[int, np.ndarray, np.ndarray], None] | None = None,
                first_index: int = 0) -> ProjectionResult:
        """Projects uint8 ``targets`` [N, H, W, C] (`steps`); ``progress(step, distance [N], loss [N])`` is
        called after each step; ``keep_steps`` keeps the ws of every step (for the video)."""
        history, last = [], None
        for last in self.steps(targets, seed, first_index):
            step, dist, loss, ws = last
            if keep_steps:
                history.append(np.asarray(ws))
            if progress is not None:
                progress(step, dist, loss)
        _, dist, loss, ws = last
        w_steps = np.stack(history, axis=1) if keep_steps else None
        return ProjectionResult(np.asarray(ws), dist, loss, w_steps)

    def render(self, ws: np.ndarray, batch_size: int = 16) -> np.ndarray:
        """ws [N, num_ws, w_dim] -> uint8 images [N, H, W, C] with the network's own constant noise (the
        optimised noise is discarded, as NVIDIA's), converted as `to_projector_uint8`."""
        ws = np.asarray(ws, np.float32)
        out = []
        for start in range(0, len(ws), batch_size):
            chunk = ws[start:start + batch_size]
            out.append(np.asarray(self._render(self.variables, pad_rows(chunk, batch_size)))[: len(chunk)])
        return np.concatenate(out)
