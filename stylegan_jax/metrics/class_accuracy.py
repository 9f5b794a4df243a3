"""Does a conditional generator draw the class it is asked for? Per-class accuracy of its samples as judged by
a classifier (scikit-learn's SVC on pixels) trained on the dataset's real images.

``python -m stylegan_jax.metrics.class_accuracy --network runs/cgan/network-snapshot-000120 --dataset digits``
prints one JSON line: the classifier's accuracy on held-out reals and, per class, the fraction of G_ema's
samples (fixed seeds, constant noise) that it labels as the class they were drawn for.
"""

from __future__ import annotations

import json
import sys

import jax
import numpy as np
from sklearn.svm import SVC

from stylegan_jax import image_size
from stylegan_jax.cli import ArgumentParser, UsageError, path_arg, positive_int, run
from stylegan_jax.data import DatasetError, make_iterator, read_dataset_info, resolve_dataset
from stylegan_jax.models import UnknownFamilyError, get_family
from stylegan_jax.network_snapshot import NetworkLoadError, check_generator_shapes, load_network
from stylegan_jax.sampling import NON_FINITE_IMAGES, one_hot


def real_images(dataset: str, data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Every image of a labelled dataset once: (pixels [N, H * W * C] in [-1, 1], class indices [N])."""
    path = resolve_dataset(dataset, data_dir=data_dir)
    n = read_dataset_info(path)["num_images"]
    batch = next(make_iterator(path, batch_size=n, shuffle=False, num_epochs=1, drop_remainder=False))
    return batch["image"].reshape(n, -1), np.argmax(batch["label"], axis=1)


def train_classifier(x: np.ndarray, y: np.ndarray, seed: int = 0) -> tuple[SVC, float]:
    """An RBF SVC on 80% of the reals; returns it and its accuracy on the other 20%. A training 80% of fewer
    than two classes (too few images, or images of one class) is a `UsageError`."""
    order = np.random.RandomState(seed).permutation(len(x))
    cut = int(0.8 * len(x))
    classes = len(np.unique(y[order[:cut]]))
    if classes < 2:
        raise UsageError(f"the classifier trains on 80% of the dataset's {len(x)} image(s): {cut} image(s) of "
                         f"{classes} class(es); it needs images of two classes or more there")
    classifier = SVC(gamma="scale").fit(x[order[:cut]], y[order[:cut]])
    return classifier, float(classifier.score(x[order[cut:]], y[order[cut:]]))


def class_accuracy(G, G_vars: dict, classifier: SVC, c_dim: int, per_class: int = 100,
                   seed: int = 0) -> np.ndarray:
    """Fraction of ``per_class`` samples of each class that ``classifier`` labels as that class, [c_dim]."""
    z = np.random.RandomState(seed).randn(per_class * c_dim, G.z_dim).astype(np.float32)
    labels = np.repeat(np.arange(c_dim), per_class)
    images = np.asarray(jax.jit(lambda z, c: G.apply(G_vars, z, c, noise_mode="const"))(z, one_hot(labels, c_dim)))
    if not np.isfinite(images).all():
        raise UsageError(NON_FINITE_IMAGES)
    predicted = classifier.predict(images.reshape(len(z), -1))
    return np.array([np.mean(predicted[labels == k] == k) for k in range(c_dim)])


def main(argv: list[str] | None = None) -> int:
    """Runs the CLI; returns the exit status (0 done, 1 user error: one line on stderr)."""
    parser = ArgumentParser(prog="python -m stylegan_jax.metrics.class_accuracy",
                            description=__doc__.split("\n\n")[0])
    parser.add_argument("--network", required=True, type=path_arg,
                        help="a network snapshot directory of a conditional run")
    parser.add_argument("--dataset", required=True, type=path_arg, help="the labelled dataset it was trained on")
    parser.add_argument("--data-dir", default=None, type=path_arg,
                        help="datasets directory (default: the training default)")
    parser.add_argument("--per-class", type=positive_int, default=100, help="samples per class")
    parser.add_argument("--model", default=None, help="model family (default: the snapshot's, else stylegan2)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)

    def body() -> None:
        network = load_network(args.network)
        family = get_family(args.model, flag="--model") if args.model else network.family
        if args.model:  # a network that records its model has that one; else its arrays fit --model's generator
            if "model" in network.metadata and family.name != network.model:
                raise UsageError(f"--model {args.model}: --network {args.network} holds a {network.model} network")
            check_generator_shapes(args.network, network, family)
        G = family.build_generator(network.G_kwargs)
        c_dim = G.c_dim
        if not c_dim:
            raise UsageError(f"--network {args.network} is unconditional: class accuracy needs a conditional one")
        path = resolve_dataset(args.dataset, data_dir=args.data_dir)
        info = read_dataset_info(path)
        kind, (h, w), channels = info["label_kind"], image_size.parse(info["resolution"]), info["channels"]
        gh, gw = image_size.parse(G.img_resolution)
        if (kind, info["c_dim"], h, w, channels) != ("class", c_dim, gh, gw, G.img_channels):
            labels = "no labels" if kind == "none" else f"{kind} labels of c_dim {info['c_dim']}"
            raise UsageError(f"--dataset {path} holds {w}x{h}x{channels} images with {labels}; the network "
                             f"makes {gw}x{gh}x{G.img_channels} images of {c_dim} classes: pass the dataset it "
                             "was trained on")
        classifier, real_accuracy = train_classifier(*real_images(str(path)))
        per_class = class_accuracy(G, network.G_ema, classifier, c_dim, args.per_class)
        print(json.dumps({"network": args.network, "real_accuracy": round(real_accuracy, 4),
                          "per_class": [round(float(a), 3) for a in per_class],
                          "min": round(float(per_class.min()), 3)}))

    return run("class_accuracy", body, NetworkLoadError, DatasetError, UnknownFamilyError, UsageError)


if __name__ == "__main__":
    sys.exit(main())
