"""Is the outbound trunk usable? What Asterisk knows of its far end (qualify).

With ``pbx.trunk_qualify_seconds`` > 0 Asterisk sends SIP OPTIONS to the trunk's far end;
once the far end has failed to answer, Asterisk marks its contact unreachable and refuses
every call to the trunk (ARI answers ``500 Allocation failed``) until it answers again.
With qualify off (0) nothing is checked and Asterisk always tries the call.

ARI's endpoint state (``GET /endpoints/PJSIP/trunk``) is not used: it reads "offline"
from boot until the first OPTIONS is answered, while calls still go through; the contact's
own status (AMI) says "Unreachable" only after a check has failed.
"""

from __future__ import annotations

from ivr.telephony.ami import AmiClient, contacts_reachable

TRUNK_ENDPOINT = "trunk"


async def trunk_reachable(
    ami: AmiClient, endpoint: str = TRUNK_ENDPOINT, timeout: float = 5.0
) -> bool | None:
    """False when Asterisk has marked every contact of the trunk unreachable (a qualified far
    end that does not answer OPTIONS: calls to it fail at once); True when one answers
    OPTIONS; None when nothing is known (qualify off, or the first check still pending):
    calls are tried. Raises AmiError when AMI does not answer or there is no such endpoint.
    """
    return contacts_reachable(await ami.endpoint_contacts(endpoint, timeout))
