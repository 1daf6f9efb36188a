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
