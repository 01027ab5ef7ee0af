"""Errors that carry a message meant for the user (printed without a traceback)."""

from __future__ import annotations


class GridlakeError(RuntimeError):
    """Base class: the message says what went wrong and what to do."""


class IngestionError(GridlakeError):
    """A delivery could not be ingested (the file is recorded as rejected)."""


class ConservationError(GridlakeError):
    """Row counts between layers do not balance."""


class QualityGateError(GridlakeError):
    """An error-level expectation failed: publication to the next layer is stopped."""


class PrivacyError(GridlakeError):
    """Personal data would leak, or the pseudonym key is missing."""


class RunLockedError(GridlakeError):
    """Another run of the same night holds the lock."""


class StaleNightError(GridlakeError):
    """A night older than the newest night already committed would overwrite a newer lifecycle."""


class ConcurrentCommitError(GridlakeError):
    """A table kept moving under a night's commit (other nights committing) beyond the retries."""
