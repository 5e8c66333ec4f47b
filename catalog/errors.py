"""The one exception family of steward.

Every expected failure (bad input, unknown asset, unreachable database) is a
`StewardError` with a one-line message and, where useful, a hint. The CLI turns
it into a one-line error and exit code 2; anything else is a bug.
"""

from __future__ import annotations


class StewardError(Exception):
    """Base of all expected errors. `str(err)` is one line."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = " ".join(message.split())
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class InvalidInput(StewardError):
    """Input that cannot be accepted: a malformed URL, spec or file."""


class NotFound(StewardError):
    """A reference to an asset or version the catalog does not hold."""


class Ambiguous(StewardError):
    """A reference that matches more than one asset."""

    def __init__(self, reference: str, candidates: list[str], message: str | None = None) -> None:
        shown = ", ".join(candidates[:10])
        more = f" and {len(candidates) - 10} more" if len(candidates) > 10 else ""
        if message is None:
            super().__init__(
                f"'{reference}' is ambiguous: it matches {shown}{more}",
                hint="give more of the URI",
            )
        else:
            super().__init__(message)
        self.candidates = candidates


class CatalogUnavailable(StewardError):
    """The catalog database cannot be opened or reached."""


class SourceUnavailable(StewardError):
    """A scanned source (database, vector store, repository) cannot be read."""


class CatalogWriteFailed(StewardError):
    """The catalog database refused a write (a constraint, a trigger, a full disk).

    The transaction was rolled back: nothing of what was being written is kept.
    """
