"""The local Stripe stand-in (DESIGN §7): see ``Simulator`` and the README."""

from .core import API_VERSION, Simulator
from .delivery import Attempt, Delivery
from .hosted import FormError, HostedSession, LinkUnusable, SimulatorError

__all__ = [
    "API_VERSION",
    "Attempt",
    "Delivery",
    "FormError",
    "HostedSession",
    "LinkUnusable",
    "Simulator",
    "SimulatorError",
]
