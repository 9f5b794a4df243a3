"""Model families: each module registers one `registry.Family` (networks, config defaults, capabilities);
`get_family(name)` returns it."""

from stylegan_jax.models import (  # noqa: F401  (register)
    dcgan,
    pggan,
    r3gan,
    stylegan1,
    stylegan2,
    stylegan2_revised,
    stylegan2_stripped,
    stylegan3,
)
from stylegan_jax.models.registry import FAMILIES, Family, UnknownFamilyError, get_family

__all__ = ["FAMILIES", "Family", "UnknownFamilyError", "get_family"]
