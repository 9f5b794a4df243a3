"""Whole generator/discriminator pairs; ``MODELS`` maps a config name to its (Generator, Discriminator)."""

from stylegan_jax.models.stylegan2 import Discriminator, Generator

MODELS = {"stylegan2": (Generator, Discriminator)}

__all__ = ["MODELS", "Discriminator", "Generator"]
