"""Whole generator/discriminator pairs; ``MODELS`` maps a config name to its (Generator, Discriminator)."""

from stylegan_jax.models import dcgan, pggan, stylegan1, stylegan2_revised
from stylegan_jax.models.stylegan2 import Discriminator, Generator

MODELS = {"stylegan2": (Generator, Discriminator), "dcgan": (dcgan.Generator, dcgan.Discriminator),
          "pggan": (pggan.Generator, pggan.Discriminator),
          "stylegan1": (stylegan1.Generator, stylegan1.Discriminator),
          "stylegan2_revised": (stylegan2_revised.Generator, stylegan2_revised.Discriminator)}

__all__ = ["MODELS", "Discriminator", "Generator"]
