"""What a long command is doing, on one line of a terminal: nothing at all when stderr is not one
(a pipe, a file, a test), so that output stays exactly the command's."""

from __future__ import annotations

import sys


class Progress:
    def __init__(self, stream=None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.active = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.shown = False

    def __call__(self, message: str) -> None:
        """Replace the line with `message` (… appended)."""
        if self.active:
            self.stream.write(f"\r\033[K{message}…")
            self.stream.flush()
            self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.shown = False
