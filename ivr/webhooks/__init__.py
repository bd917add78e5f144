"""Webhooks: events written to an outbox in the transaction of the change they report,
delivered at least once to the organisation's endpoints, signed per Standard Webhooks."""
