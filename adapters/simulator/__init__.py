"""The local Stripe stand-in (DESIGN §7): see ``Simulator`` and the README."""

from .delivery import Attempt, Delivery
from .errors import FormError, LinkUnusable, SimulatorError
from .gateway import SimulatedGateway
from .hosted import HostedSession
from .simulator import Simulator
from .state import API_VERSION

__all__ = [
    "API_VERSION",
    "Attempt",
    "Delivery",
    "FormError",
    "HostedSession",
    "LinkUnusable",
    "SimulatedGateway",
    "Simulator",
    "SimulatorError",
]
