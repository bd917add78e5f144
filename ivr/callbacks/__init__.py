"""The callback worklist: residents' permission-to-contact requests, worked by the staff
until each ends in a recorded answer (``rules``: the pure status rules; ``service``: the
queries and changes)."""
