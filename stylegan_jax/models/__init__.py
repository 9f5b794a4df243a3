"""Model families: each module registers one `registry.Family` (networks, config defaults, capabilities);
`get_family(name)` returns it."""

from stylegan_jax.models import dcgan, pggan, stylegan1, stylegan2, stylegan2_revised, stylegan3  # noqa: F401  (register)
from stylegan_jax.models.registry import FAMILIES, Family, UnknownFamilyError, get_family

__all__ = ["FAMILIES", "Family", "UnknownFamilyError", "get_family"]
