"""The events and their thin payloads: ids and state only (the details are fetched through
the API, where access is logged). webhooks/*.schema.json describe each ``data``."""

from __future__ import annotations

from typing import Final

CALL_FINISHED: Final = "call.finished"
SURVEY_COMPLETED: Final = "survey.completed"
TRANSCRIPT_READY: Final = "transcript.ready"
TRANSCRIPT_CORRECTED: Final = "transcript.corrected"
CALLBACK_REQUESTED: Final = "callback.requested"
CAMPAIGN_FINISHED: Final = "campaign.finished"

EVENT_TYPES: Final[tuple[str, ...]] = (
    CALL_FINISHED,
    SURVEY_COMPLETED,
    TRANSCRIPT_READY,
    TRANSCRIPT_CORRECTED,
    CALLBACK_REQUESTED,
    CAMPAIGN_FINISHED,
)

#: The keys of each event's ``data`` (the schemas' ``required``).
DATA_KEYS: Final[dict[str, tuple[str, ...]]] = {
    CALL_FINISHED: ("call_id", "campaign_id", "status"),
    SURVEY_COMPLETED: ("call_id", "campaign_id", "attempt_id"),
    TRANSCRIPT_READY: ("transcript_id", "call_id", "campaign_id"),
    TRANSCRIPT_CORRECTED: ("transcript_id", "call_id", "campaign_id", "review_state"),
    CALLBACK_REQUESTED: ("callback_request_id", "call_id", "campaign_id", "status"),
    CAMPAIGN_FINISHED: ("campaign_id", "status"),
}


def check_events(names: list[str]) -> list[str]:
    """``names`` in the canonical order, or ValueError naming an unknown one."""
    unknown = [n for n in names if n not in EVENT_TYPES]
    if unknown:
        raise ValueError(f"unknown event {unknown[0]!r} (known: {', '.join(EVENT_TYPES)})")
    return [e for e in EVENT_TYPES if e in names]
