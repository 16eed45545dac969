"""User-facing errors: the CLI prints these as one line, never as a traceback."""


class ProcvidError(Exception):
    """A problem caused by the user's input or environment (bad file, missing weights, ...)."""


class VideoError(ProcvidError):
    """A video cannot be opened or decoded."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class EncoderError(ProcvidError):
    """An encoder cannot be built or its weights cannot be loaded."""
