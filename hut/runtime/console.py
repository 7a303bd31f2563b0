"""A run's console: one compact bar on a terminal, plain lines in a log file.

tqdm's own switch decides (``disable=None``: no bar when stderr is not a terminal, so a log file gets
no ``\\r`` frames). Without a bar the trainer prints a line every ``trainer.log_every`` steps; in
both cases a line per epoch (train loss, dev metrics, lr, examples/s, elapsed, ETA). No line is longer
than :data:`MAX_LINE`. ``trainer.progress=false`` shows no bar anywhere (the tasks' ``eval`` and
``decode`` bars ask :func:`bar_disable` too) and no step lines; only the main process prints.
"""
from __future__ import annotations

import logging
import os
import re
import sys
import time
import warnings

from tqdm.auto import tqdm

MAX_LINE = 200
LABEL_MAX = 60
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def bar_disable(progress: bool, main: bool = True) -> bool | None:
    """tqdm's ``disable``: True (no bar) with ``trainer.progress=false`` or off the main process; else
    None, tqdm's own switch: a bar on a terminal, none in a file."""
    return None if (progress and main) else True


def fit(line: str) -> str:
    """One log line, at most :data:`MAX_LINE` characters."""
    return line if len(line) <= MAX_LINE else line[: MAX_LINE - 1] + "…"


def hms(seconds: float) -> str:
    s = int(max(seconds, 0))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class _StripAnsi(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = _ANSI.sub("", record.getMessage()), None
        return True


class _NoLoadReport(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "LOAD REPORT" not in record.getMessage()


#: the libraries whose deprecation notices (FutureWarning, DeprecationWarning) address the suite's
#: developers, not its users: quiet unless Python is asked for warnings (``-W``, ``PYTHONWARNINGS``)
LIBRARY_MODULES = r"(transformers|peft|torch|accelerate|huggingface_hub|datasets|hydra|omegaconf)(\.|$)"


def quiet_libraries(progress: bool = True) -> None:
    """Library output fit for a run or a command (every run and every command's :func:`hut.config.cli_options`
    calls it; it can be called again).

    * transformers' log messages (such as ``loss_type=None was set in the config but it is
      unrecognized``, said of every GPT-2 loss) only when asked for, with transformers' own switch
      ``TRANSFORMERS_VERBOSITY`` (``warning``, ``info``, ``debug``); without it transformers logs errors only;
    * its LOAD REPORT (a table of the weights the task head leaves newly initialised, printed at warning
      level by every ``from_pretrained``) only with ``TRANSFORMERS_VERBOSITY=info`` (or ``debug``):
      transformers has no switch for this one report, so a logging filter drops it;
    * the libraries' FutureWarnings and DeprecationWarnings (:data:`LIBRARY_MODULES`) only when Python
      is asked for warnings (``python -W default``, ``PYTHONWARNINGS``);
    * transformers' and the hub's download bars off (their own switches) with ``trainer.progress=false``
      or in a log file;
    * in a log file, colour codes taken out of transformers' log records: transformers styles the LOAD
      REPORT's title with ANSI codes whether or not the output is a terminal.
    """
    # Imported here: transformers takes seconds to import, and the console's other helpers (bars, lines)
    # are imported by modules that never load a model.
    import huggingface_hub.utils  # (see above)
    import transformers.utils.logging as tlog  # (see above)

    tty = sys.stderr.isatty()
    if not progress or not tty:
        tlog.disable_progress_bar()
        huggingface_hub.utils.disable_progress_bars()
    tlog.get_verbosity()  # makes transformers set up its handler
    level = os.environ.get("TRANSFORMERS_VERBOSITY", "").lower()
    tlog.set_verbosity(tlog.log_levels.get(level, tlog.ERROR))
    if not sys.warnoptions:
        for category in (FutureWarning, DeprecationWarning):
            warnings.filterwarnings("ignore", category=category, module=LIBRARY_MODULES)
    asked = level in ("info", "debug")
    for handler in logging.getLogger("transformers").handlers:
        if not asked and not any(isinstance(f, _NoLoadReport) for f in handler.filters):
            handler.addFilter(_NoLoadReport())
        if not tty and not any(isinstance(f, _StripAnsi) for f in handler.filters):
            handler.addFilter(_StripAnsi())


def _num(v: float) -> str:
    return f"{v:.4g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"


class RunProgress:
    """One bar for the whole run (short label, %, ETA, it/s, loss) or, without a terminal, lines."""

    def __init__(self, label: str, total: int, done: int, progress: bool, main: bool):
        self.label = label if len(label) <= LABEL_MAX else label[: LABEL_MAX - 1] + "…"
        self.total, self.main = total, main
        self.bar = tqdm(total=total, initial=done, desc=self.label, leave=False, dynamic_ncols=True,
                        disable=bar_disable(progress, main))
        self.lines = bool(progress and main and self.bar.disable)  # no bar (a file): step lines instead
        self.t0, self.done0 = time.time(), done

    def _eta(self, step: int) -> tuple[float, float]:
        """(steps per second in this process, seconds left)."""
        dt = time.time() - self.t0
        rate = (step - self.done0) / dt if dt > 0 and step > self.done0 else 0.0
        return rate, ((self.total - step) / rate if rate else float("nan"))

    def step(self, step: int, loss: float | None = None, lr: float | None = None, elapsed: float = 0.0) -> None:
        """After each optimiser step; ``loss`` every ``trainer.log_every`` steps (when it is read)."""
        self.bar.update(1)
        if loss is None:
            return
        self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        if self.lines:
            rate, eta = self._eta(step)
            print(fit(f"{self.label} step {step}/{self.total} ({100 * step / max(self.total, 1):.0f}%) loss "
                      f"{loss:.4f} lr {lr:.2e} {rate:.2f} it/s elapsed {hms(elapsed)} ETA {_eta_text(eta)}"), flush=True)

    def epoch(self, epoch: int, epochs: int, step: int, train_loss: float, metrics: dict, lr: float,
              examples_per_s: float, elapsed: float) -> None:
        if not self.main:
            return
        _, eta = self._eta(step)
        dev = " ".join(f"{k}={_num(v)}" for k, v in metrics.items())
        tqdm.write(fit(f"{self.label} epoch {epoch}/{epochs} step {step}/{self.total}: train_loss {train_loss:.4f} | "
                       f"dev {dev} | lr {lr:.2e} | {examples_per_s:.1f} ex/s | elapsed {hms(elapsed)} ETA "
                       f"{_eta_text(eta)}"), file=sys.stdout)
        sys.stdout.flush()

    def close(self) -> None:
        self.bar.close()


def _eta_text(eta: float) -> str:
    return hms(eta) if eta == eta else "?"  # NaN before the first step
