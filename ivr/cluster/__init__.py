"""Several Asterisk nodes on one database: heartbeats and the cluster view (nodes.py),
the Kamailio dispatcher in front of them (kamailio.py), and sizing (plan.py)."""
