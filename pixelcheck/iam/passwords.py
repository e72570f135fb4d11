"""Password hashing with argon2id; parameters come from settings and old hashes are upgraded on sign-in."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from pixelcheck.settings import Settings


class Passwords:
    """Hashes and checks passwords. `check_unknown` costs what `check` costs, for logins that do not exist."""

    def __init__(self, *, time_cost: int, memory_cost_kib: int, parallelism: int) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost_kib, parallelism=parallelism)
        # Hashed once with the current parameters so an unknown login pays for the same argon2 run.
        self._decoy_hash = self._hasher.hash("decoy password for logins that do not exist")

    @classmethod
    def from_settings(cls, settings: Settings) -> Passwords:
        """A Passwords using settings.argon2_* parameters."""
        return cls(time_cost=settings.argon2_time_cost, memory_cost_kib=settings.argon2_memory_cost_kib,
                   parallelism=settings.argon2_parallelism)

    def hash(self, password: str) -> str:
        """An encoded argon2id hash (with its salt and parameters) of password."""
        return self._hasher.hash(password)

    def check(self, stored_hash: str, password: str) -> bool:
        """True when password matches stored_hash; False for a mismatch or an unusable stored hash."""
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def check_unknown(self, password: str) -> bool:
        """Spend the time of a real check, then fail: sign-in must not reveal whether a login exists."""
        self.check(self._decoy_hash, password)
        return False

    def needs_rehash(self, stored_hash: str) -> bool:
        """True when stored_hash was made with other parameters than the current ones."""
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except (InvalidHashError, ValueError):
            return True
