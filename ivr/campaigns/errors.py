"""Campaign errors, importable without loading the database layer."""

from __future__ import annotations

from dataclasses import dataclass


class CampaignAdminError(Exception):
    """A campaign command cannot be done; the message says why (in English), ``code`` what
    kind of refusal it is (so that a page can say it in the user's language)."""

    def __init__(self, message: str = "", code: str = "") -> None:
        super().__init__(message)
        self.code = code


# The codes of CampaignAdminError (besides those below: "invalid" for CampaignInvalid).
NO_CONTACTS = "no_contacts"  # start: import contacts first
FINAL = "final"  # the campaign is stopped: nothing changes it any more
PAUSE_FIRST = "pause_first"  # a running campaign's settings: pause it first
NOT_NOW = "not_now"  # a status change its present status does not allow
FLOW_UNUSABLE = "flow_unusable"  # start: the flow is gone or does not validate


@dataclass(frozen=True)
class FieldProblem:
    """What is wrong with one field of a campaign's settings.

    ``field`` is a ``CampaignSettings`` attribute, ``name`` or ``flow``; ``code`` says what
    kind of problem it is (so that a page can say it in the user's language); ``message``
    says it in English, with the detail a parser gave (a calling window, a flow, a number).
    """

    field: str
    code: str
    message: str


# The codes of FieldProblem (each page words them itself).
REQUIRED = "required"  # empty
TOO_LONG = "too_long"  # more than 100 characters (a name)
TAKEN = "taken"  # another campaign of the organisation has the name
AT_LEAST_ONE = "at_least_one"  # a whole number >= 1
POSITIVE = "positive"  # a number > 0
UNKNOWN_FLOW = "unknown_flow"  # no such flow in the organisation (or a path from the web)
INVALID_FLOW = "invalid_flow"  # the flow does not validate (message: every problem)
INVALID_WINDOWS = "invalid_windows"  # the calling windows do not parse (message: why)
INVALID_NUMBER = "invalid_number"  # the caller ID is not a phone number (message: why)
UNKNOWN_TIMEZONE = "unknown_timezone"
UNKNOWN_LANGUAGE = "unknown_language"
FROZEN = "frozen"  # cannot change once the campaign has started (the flow)


class CampaignInvalid(CampaignAdminError):
    """The settings of a campaign to create or edit have problems: every one of them, per
    field (``problems``), so that a form can show each beside its field."""

    def __init__(self, problems: list[FieldProblem], name: str = "") -> None:
        self.problems = list(problems)
        prefix = f"campaign {name!r}: " if name else ""
        super().__init__(prefix + "\n".join(p.message for p in self.problems), "invalid")

    def by_field(self) -> dict[str, FieldProblem]:
        """The first problem of each field."""
        found: dict[str, FieldProblem] = {}
        for problem in self.problems:
            found.setdefault(problem.field, problem)
        return found
