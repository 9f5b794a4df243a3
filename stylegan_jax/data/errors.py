"""The one exception type of the data package: a user error, reported as one line without a traceback."""


class DatasetError(Exception):
    """A problem with the user's input or dataset (bad flag, empty source, missing dataset...).

    The message is one complete line meant for the user; CLIs print it and exit non-zero.
    """
