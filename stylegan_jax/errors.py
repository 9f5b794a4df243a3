"""The user errors every layer of the package may raise: each message is one line that names the flag, key
or file and says what was expected. The command-line tools print them as ``<prog>: error: <message>``."""


class ConfigError(ValueError):
    """A bad experiment, config value or combination of values."""
