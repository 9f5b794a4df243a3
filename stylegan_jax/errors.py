"""The user errors every layer of the package may raise: each message is one line that names the flag, key
or file and says what was expected. The command-line tools print them as ``<prog>: error: <message>``."""

import re


class ConfigError(ValueError):
    """A bad experiment, config value or combination of values."""


def first_line(error: BaseException) -> str:
    """The first line of ``error``'s message (a library's may run to many), or its type's name when empty: what
    a one-line user error quotes of the exception that caused it; without the TensorStore spec (about 2 KB of
    JSON) that TensorStore's errors end with."""
    text = str(error)
    line = text.strip().splitlines()[0] if text.strip() else type(error).__name__
    return re.sub(r" \[tensorstore_spec='.*'\]", "", line)
