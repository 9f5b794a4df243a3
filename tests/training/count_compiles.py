"""``python -m tests.training.count_compiles TRAIN_ARGS...``: the training CLI, which then prints one line
``compilation cache: H hits, M misses`` (JAX's persistent-cache events of the whole process), so that a test
can see what a subprocess of a multi-process run compiled. `cache_events` counts them in this process."""

import collections
import contextlib
import sys
from collections.abc import Iterator

import jax

from stylegan_jax import train


@contextlib.contextmanager
def cache_events() -> Iterator[collections.Counter]:
    """JAX's persistent compilation-cache events while the block runs, by name (``cache_hits``,
    ``cache_misses``, ...)."""
    events = collections.Counter()

    def listen(name, **_):
        events[name.removeprefix("/jax/compilation_cache/")] += 1

    jax.monitoring.register_event_listener(listen)
    try:
        yield events
    finally:
        jax.monitoring.unregister_event_listener(listen)


def main(argv: list[str]) -> int:
    with cache_events() as events:
        try:
            return train.main(argv)
        finally:
            print(f"compilation cache: {events['cache_hits']} hits, {events['cache_misses']} misses", flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
