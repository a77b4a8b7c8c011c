"""Personal data every source treats alike: a buyer's email is kept only as a salted hash."""

from __future__ import annotations

import hashlib


def hash_buyer_email(email: str | None, salt: str) -> str | None:
    """The salted SHA-256 of a trimmed, lower-cased buyer email (None for none): the one rule every source uses."""
    if not email or not email.strip():
        return None
    return hashlib.sha256(f"{salt}:{email.strip().lower()}".encode()).hexdigest()
