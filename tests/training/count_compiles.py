"""``python -m tests.training.count_compiles TRAIN_ARGS...``: the training CLI, which then prints one line
``compilation cache: H hits, M misses`` (JAX's persistent-cache events of the whole process), so that a test
can see what a subprocess of a multi-process run compiled."""

import collections
import sys

import jax

from stylegan_jax import train


def main(argv: list[str]) -> int:
    events = collections.Counter()

    def listen(name, **_):
        events[name.removeprefix("/jax/compilation_cache/")] += 1

    jax.monitoring.register_event_listener(listen)
    try:
        return train.main(argv)
    finally:
        print(f"compilation cache: {events['cache_hits']} hits, {events['cache_misses']} misses", flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
