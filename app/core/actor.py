"""Who acts: a portal user, the CLI, a job or the public form.

Services take the actor as an argument. The few places that cannot be handed one (the vault's
decrypt hook, which fires deep inside any service) ask ``current()``, which the web layer
answers by installing a provider at start-up: nothing below the web layer imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    """A person or process, as the audit trail records it."""

    name: str
    user_id: int | None = None
    roles: tuple[str, ...] = ()
    roster_entry_id: int | None = None
    ip: str | None = None
    user_agent: str | None = None
    mfa: bool = False
    roster_approved: bool = False

    @classmethod
    def system(cls, name: str) -> Actor:
        return cls(name=name)


_provider: Callable[[], Actor | None] | None = None


def provide(provider: Callable[[], Actor | None] | None) -> None:
    """Install the function that names the acting user of the current request (the web layer
    does, at start-up); ``None`` removes it."""
    global _provider
    _provider = provider


def current_actor(default: str = "system") -> Actor:
    """The acting user of the current request, else the process itself (``default``)."""
    if _provider is not None:
        actor = _provider()
        if actor is not None:
            return actor
    return Actor.system(default)
