"""The Stripe adapter on the official SDK: the ``StripeGateway`` port
(``StripeSdkGateway``), the ``SignatureVerifier`` port
(``StripeSignatureVerifier``) and SDK errors in the engine's tree."""

from .errors import translate
from .gateway import StripeSdkGateway
from .signature import StripeSignatureVerifier

__all__ = ["StripeSdkGateway", "StripeSignatureVerifier", "translate"]
