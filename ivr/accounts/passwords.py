"""Password hashing (argon2id) and generated passwords."""

from __future__ import annotations

import functools
import secrets
import string

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()  # argon2id with the library's current recommended parameters
# Letters and digits that cannot be mistaken for one another when read aloud or copied.
_ALPHABET = "".join(c for c in string.ascii_letters + string.digits if c not in "Il1O0o")
MIN_LENGTH = 12


@functools.cache
def _dummy() -> str:
    """A fixed hash to verify against when the account does not exist, so that a login for
    an unknown e-mail takes as long as one with a wrong password (no account enumeration).
    Made on first use: hashing costs argon2's 64 MiB and ~0.1 s, which every `ivr` command
    paid at import."""
    return _HASHER.hash(secrets.token_urlsafe(16))


def generate_password(length: int = 20) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """True if ``password`` matches ``stored`` (None: an unknown account; always False)."""
    try:
        return _HASHER.verify(stored or _dummy(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _HASHER.check_needs_rehash(stored)


def check_strength(password: str) -> str | None:
    """Why the password is too weak, or None."""
    if len(password) < MIN_LENGTH:
        return f"at least {MIN_LENGTH} characters"
    if len(set(password)) < 5:
        return "too few different characters"
    return None
