"""Organisations, staff users, roles, logins and the audit log: the services that both the
web UI and the ``ivr`` command call."""
