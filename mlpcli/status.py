"""Run statuses: the one list of them, and what each means.

summary.json holds one of the statuses a run writes (`written`); compare derives two more
when it reads a run (`crashed`, `corrupt`), and a grid records two of its own for
combinations that never became a run (`invalid`, `error`). Groupings ("has nothing left to
resume", "succeeded", "failed") are properties here, never lists in the modules that use them.
"""

import enum


class RunStatus(enum.StrEnum):
    RUNNING = "running"  # training now, or killed outright (SIGKILL, power cut)
    COMPLETED = "completed"  # ran every epoch
    STOPPED_EARLY = "stopped_early"  # early stopping ended it
    DIVERGED = "diverged"  # the loss became NaN/inf (exit 1)
    INTERRUPTED = "interrupted"  # Ctrl-C, SIGTERM, SIGHUP: checkpoint flushed, resumable
    FAILED = "failed"  # a write or data error after the run dir existed (exit 2)
    PRUNED = "pruned"  # a tuning trial its pruner stopped
    # derived by compare when reading a run
    CRASHED = "crashed"  # summary says running, but its process is gone
    CORRUPT = "corrupt"  # summary.json missing or unreadable
    # grid combinations that never became a run
    INVALID = "invalid"  # its config or data was refused
    ERROR = "error"  # its worker process failed

    @classmethod
    def parse(cls, value: object) -> "RunStatus | None":
        """The status a summary.json holds, or None if it holds no status mlpcli writes."""
        try:
            status = cls(value) if isinstance(value, str) else None
        except ValueError:
            return None
        return status if status is not None and status.written else None

    @property
    def written(self) -> bool:
        """A status a run writes into its summary.json."""
        derived = (RunStatus.CRASHED, RunStatus.CORRUPT, RunStatus.INVALID, RunStatus.ERROR)
        return self not in derived

    @property
    def finished(self) -> bool:
        """Training is over: `--resume` has nothing to do."""
        return self in (
            RunStatus.COMPLETED,
            RunStatus.STOPPED_EARLY,
            RunStatus.DIVERGED,
            RunStatus.PRUNED,
        )

    @property
    def succeeded(self) -> bool:
        """Finished with a model worth using: completed or stopped early."""
        return self in (RunStatus.COMPLETED, RunStatus.STOPPED_EARLY)

    @property
    def resumable(self) -> bool:
        """`--resume` continues it from its last checkpoint."""
        return self in (
            RunStatus.RUNNING,
            RunStatus.INTERRUPTED,
            RunStatus.FAILED,
            RunStatus.CRASHED,
        )

    @property
    def failure(self) -> bool:
        """Ended without a usable model; compare sorts these last, a grid reports them."""
        return self in (
            RunStatus.DIVERGED,
            RunStatus.FAILED,
            RunStatus.CRASHED,
            RunStatus.CORRUPT,
            RunStatus.INVALID,
            RunStatus.ERROR,
        )
