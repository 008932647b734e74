"""A progress bar on stderr for a long step, shown only when stderr is a terminal.

The style is chunk_pool's simulate bar (one self-overwriting line: events done, percentage,
elapsed and remaining time). Only on a terminal: a log file or a pipe would collect every
redraw, and a caller reading stderr (a script, the tests) gets only what matters, the one-line
errors. tqdm does this too, but would be a dependency for forty lines, and its bar writes even
where stderr is a file unless told not to.
"""

import sys
import time

_MIN_REDRAW_S = 0.2  # between redraws: a chunk every few milliseconds would flood the terminal
_WIDTH = 20


def shown(stream=None) -> bool:
    """Whether a bar is drawn on `stream` (stderr by default): only if it is a terminal."""
    stream = sys.stderr if stream is None else stream
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


class Bar:
    """`with Bar("predicting", total) as bar: ... bar.update(done)`: a line on stderr.

    Leaving the block ends the line, so whatever follows (a result, an error's one line)
    starts on its own; a bar that is not shown does nothing at all.
    """

    def __init__(self, label: str, total: int, unit: str = "events", stream=None) -> None:
        self.label, self.total, self.unit = label, max(int(total), 0), unit
        self.stream = sys.stderr if stream is None else stream
        self.visible = shown(self.stream)
        self.done = 0
        self._started = time.perf_counter()
        self._drawn_at = -float("inf")
        self._drawn = False

    def __enter__(self) -> "Bar":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, done: int) -> None:
        """Sets the count done so far (at most `total`) and redraws if due."""
        self.done = min(int(done), self.total) if self.total else int(done)
        now = time.perf_counter()
        if self.visible and (now - self._drawn_at >= _MIN_REDRAW_S or self.done == self.total):
            self._drawn_at = now
            self.stream.write("\r" + self.line(now - self._started))
            self.stream.flush()
            self._drawn = True

    def advance(self, count: int) -> None:
        """Adds `count` to the count done."""
        self.update(self.done + count)

    def line(self, elapsed: float) -> str:
        """The bar's text after `elapsed` seconds."""
        total = max(self.total, 1)
        share = min(self.done, total) / total
        bar = "#" * int(_WIDTH * share)
        text = f"{self.label} [{bar:<{_WIDTH}}] {self.done}/{self.total} {self.unit} "
        text += f"({int(100 * share)}%), {elapsed:.1f} s"
        if 0 < self.done < self.total:
            text += f", ~{elapsed * (self.total - self.done) / self.done:.0f} s left"
        return text

    def close(self) -> None:
        """Ends the bar's line (once), if one was drawn."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
