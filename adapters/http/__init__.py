"""The platform's HTTP side: an ASGI app mountable in Starlette or FastAPI."""

from .app import create_app
from .auth import Authenticator, SignedTokenAuth

__all__ = ["Authenticator", "SignedTokenAuth", "create_app"]
