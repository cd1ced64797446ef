"""The one exception type for domain failures.

Services raise ``ApplicationError`` with a message a person can act on (and, for bulk input such
as imports, one ``problems`` entry per bad row). Views, the API and management commands turn it
into a page message, a JSON error or a command error; nothing has been saved when it is raised.
"""

from __future__ import annotations


class ApplicationError(Exception):
    def __init__(self, message: str, *, problems: list[str] | None = None, code: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.problems = list(problems or [])
        # A stable machine-readable reason where callers branch on it (e.g. "expired" links).
        self.code = code

    def __str__(self) -> str:
        if not self.problems:
            return self.message
        return self.message + "\n" + "\n".join(f"  - {p}" for p in self.problems)
