"""The one exception type that users see as a clean one-line message (CLI exit code 2)."""


class UserError(Exception):
    """Bad input from the user: a missing file, a corrupt checkpoint, an invalid option.

    The CLI prints ``error: <message>`` on stderr and exits with status 2, never a traceback.
    """
