"""The one exception type for bad user input: its message is a single line naming what was wrong and
what is allowed. The CLI prints it as ``rlrepro: error: <message>`` and exits with status 2."""


class UserError(Exception):
    """Bad input from the user (unknown name, wrong type, unreadable file)."""
