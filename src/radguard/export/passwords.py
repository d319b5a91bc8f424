"""Passwords for password recipients: ASCII only (PS3.15 D.1), a strength check, and passphrases.

The strength estimate is deliberately simple and conservative: ``length x log2(pool)`` where the pool
is the union of the character classes used, counted only over distinct characters when the password
repeats itself; a generated passphrase is rated by its real entropy (words x log2(list size)).
Limits are in ``data/export/policy.json``. Nothing here logs or prints a password.
"""

from __future__ import annotations

import itertools
import math
import secrets
import string

from radguard.export.errors import WeakPassword
from radguard.export.policy import policy, words

__all__ = ["check_password", "estimate_bits", "generate_passphrase", "passphrase_bits"]

_CLASSES = (string.ascii_lowercase, string.ascii_uppercase, string.digits,
            string.punctuation + " ")


def estimate_bits(password: str) -> float:
    """A conservative entropy estimate in bits (0 for an empty password).

    Common bases (``policy.json`` ``common``: "password", "welcome", "qwerty"...) count as one
    character, and a character that continues a run (``abc``, ``321``, ``aaa``) counts as half.
    """
    if not password:
        return 0.0
    pool = sum(len(c) for c in _CLASSES if any(ch in c for ch in password))
    reduced = password.lower()
    for base in policy()["password"]["common"]:
        reduced = reduced.replace(str(base), "\x00")
    runs = sum(1 for a, b in itertools.pairwise(reduced)
               if abs(ord(a) - ord(b)) <= 1)
    effective = min(len(reduced) - runs / 2, 2 * len(set(password)))
    return max(effective, 0.0) * math.log2(max(pool, 2))


def check_password(password: str) -> None:
    """Raise :class:`WeakPassword` with the reason if ``password`` fails the policy."""
    rules = policy()["password"]
    remedy = "use the generated passphrase, or a longer password mixing words, digits and signs"
    if any(not (0x20 <= ord(ch) <= 0x7E) for ch in password):
        raise WeakPassword("the password has characters outside printable ASCII",
                           remedy="PS3.15 D.1 limits passwords to ASCII; " + remedy)
    if len(password) < int(rules["min_length"]):
        raise WeakPassword(f"the password is shorter than {rules['min_length']} characters",
                           remedy=remedy)
    if len(set(password)) < int(rules["min_distinct_chars"]):
        raise WeakPassword("the password repeats too few distinct characters", remedy=remedy)
    if estimate_bits(password) < float(rules["min_entropy_bits"]):
        raise WeakPassword(f"the password is too guessable (under {rules['min_entropy_bits']} "
                           "bits by RadGuard's estimate)", remedy=remedy)


def passphrase_bits(n_words: int | None = None) -> float:
    n = n_words or int(policy()["passphrase"]["words"])
    return n * math.log2(len(words()))


def generate_passphrase(n_words: int | None = None) -> str:
    """A passphrase of random words from the shipped list (``secrets``; 12 bits per word)."""
    n = n_words or int(policy()["passphrase"]["words"])
    sep = str(policy()["passphrase"]["separator"])
    pool = words()
    return sep.join(secrets.choice(pool) for _ in range(n))
