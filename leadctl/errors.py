"""Named exceptions raised by library code; the CLI maps them to exit codes.

Exit codes (cron depends on them): 0 ok, 1 a data check failed, 2 usage/config/
rule/input error, 3 internal error.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass


def first_line(exc: BaseException) -> str:
    """The first line of an engine's error message (a JVM error: the JVM's own message),
    for one-line reports; the exception's type when the message is empty."""
    java = getattr(exc, "java_exception", None)
    text = str(java.getMessage() if java is not None else exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class Terminated(KeyboardInterrupt):
    """SIGTERM (what `timeout`, systemd and cron's killers send): stopped like Ctrl-C —
    nothing half-published, the private copy removed, the run logged — exit 143."""


# Signals this process received (the CLI's handlers note them): once one came, whatever
# error surfaces is its doing — DuckDB turns a signal raised mid-query into its own
# "Query interrupted" error, which a stage may wrap again (a rule check's message).
_RECEIVED: list[str] = []


def note_signal(name: str) -> None:
    """`name`: 'SIGTERM' or 'SIGINT'."""
    _RECEIVED.append(name)


def interruption(exc: BaseException) -> str | None:
    """What a signal that stopped a command is called in messages and the run log:
    `terminated (SIGTERM)`, `interrupted` (Ctrl-C, also as DuckDB's InterruptException
    when it came mid-query, or any error after a signal); None for any other failure."""
    if isinstance(exc, Terminated) or "SIGTERM" in _RECEIVED[:1]:
        return "terminated (SIGTERM)"
    if _RECEIVED or isinstance(exc, KeyboardInterrupt) or \
            type(exc).__name__ == "InterruptException":
        return "interrupted"
    return None


def stopped_after_publish(exc: BaseException, what: str) -> None:
    """A signal (or error) that came once `what` (`run 5`, `claim (run 7)`) was published:
    said as a warning (the work stands, logged `ok`: a rep who retried would claim twice),
    and marked on `exc`, so the CLI does not log the command as failed as well."""
    logging.getLogger("leadctl").warning("%s was published (ok) before it was stopped: %s",
                                         what, interruption(exc) or exc)
    exc.leadctl_published = True


def was_published(exc: BaseException) -> bool:
    return bool(getattr(exc, "leadctl_published", False))


def interruption_exit_code(exc: BaseException) -> int:
    """143 for SIGTERM, 130 for Ctrl-C (as a shell reports a process those signals end)."""
    return 143 if interruption(exc) == "terminated (SIGTERM)" else 130


class LeadctlError(Exception):
    """Base class: every error a user can cause or fix. `log_text`, when set: what the log
    says of it instead (masked where the message shows personal data on `--reveal`)."""

    exit_code = 3
    log_text: str | None = None


class UsageError(LeadctlError):
    exit_code = 2


class InputError(LeadctlError):
    """A file or value given by the user cannot be used."""

    exit_code = 2


class WorkspaceError(LeadctlError):
    """Missing/invalid workspace, or it is locked by another writer."""

    exit_code = 2


class WorkspaceLocked(WorkspaceError):
    pass


class NotFound(LeadctlError):
    """A lookup (portrait, explain) matched nothing: a data outcome, exit 1."""

    exit_code = 1


class DataCheckFailed(LeadctlError):
    """The work was done, but a check cron should alert on failed (exit 1)."""

    exit_code = 1

    def __init__(self, message: str, details: dict | None = None):
        super().__init__(message)
        self.details = details or {}


@dataclass(frozen=True)
class Location:
    file: str
    line: int  # 1-based
    col: int  # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class RuleError(LeadctlError):
    """One or more problems in rule files; each carries file:line:col."""

    exit_code = 2

    def __init__(self, problems: list[tuple[Location | None, str]]):
        self.problems = problems
        super().__init__("\n".join(format_problem(loc, msg) for loc, msg in problems))


def format_problem(loc: Location | None, message: str) -> str:
    return f"{loc}: {message}" if loc else message
