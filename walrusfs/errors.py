"""The root of every error walrusfs reports to a user.

Each layer defines a small hierarchy under WalrusfsError. The message of a WalrusfsError is
one line that a user can act on; the command-line edge prints it without a traceback.
"""


class WalrusfsError(Exception):
    """An error with a one-line message meant for the user."""

    exit_code: int = 1

    def __str__(self) -> str:
        return " ".join(str(self.args[0]).split()) if self.args else type(self).__name__
