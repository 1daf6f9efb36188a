"""Errors the CLI turns into exit codes; raised by every layer, printed only by the CLI."""


class UserError(Exception):
    """Bad input from the user (config, data, checkpoint, flag): exit code 2, one clear line."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class TrainingFailed(Exception):
    """The training itself failed (diverged to NaN/inf): exit code 1."""

    exit_code = 1


def printable(text: str) -> str:
    """`text` with control characters escaped (`\\n`, `\\x1b`): a message from a file's content
    stays one line and cannot move the cursor or recolour the terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)
