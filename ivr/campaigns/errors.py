"""Campaign errors, importable without loading the database layer."""


class CampaignAdminError(Exception):
    """A campaign command cannot be done; the message says why."""
