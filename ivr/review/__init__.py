"""The transcript review queue: reviewers listen to open answers, correct the machine text,
tag themes and mark each answer reviewed or for a second look.

- ``words``: pure helpers (word timings, the queue's filter and cursors, confidence bands).
- ``queue``: the filtered, keyset-paginated queries (every one scoped to an organisation and
  served by the indexes on ``transcripts``).
- ``service``: ``ReviewService``, what the web pages call (saving a review with its change
  log and audit entry in one transaction, the organisation's tags).
- ``audio``: short-lived signed links to a recording, for one user.
"""
