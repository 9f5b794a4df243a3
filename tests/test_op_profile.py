import re

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.op_profile import top_ops


def test_top_ops_names_the_compiled_programs_operations():
    """A profiled run of a jitted matmul-and-tanh returns operations of its compiled HLO only (no executor or
    Python events), the matmul among them, each with a positive time."""
    fn = jax.jit(lambda a, b: jnp.tanh(a @ b) + 1)
    a = jnp.ones((256, 256))
    fn(a, a).block_until_ready()
    hlo = fn.lower(a, a).compile().as_text()
    instructions = set(re.findall(r"%([\w.\-]+) = ", hlo))
    result, ops = top_ops(lambda: fn(a, a), 10)
    np.testing.assert_array_equal(np.asarray(result), np.asarray(fn(a, a)))
    names = [name for name, _ in ops]
    assert names and set(names) <= instructions, (names, sorted(instructions))
    assert any(name.startswith(("dot", "ynn_fusion")) for name in names)
    assert all(ms > 0 for _, ms in ops)
