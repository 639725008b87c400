"""The one exception type for mistakes a user can fix (spec, data, paths)."""


class HomofitError(Exception):
    """A user error: the CLI prints the message without a traceback and exits with code 2."""
