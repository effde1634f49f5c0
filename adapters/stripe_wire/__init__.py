"""Stripe's wire format, shared by both Stripe adapters (the official SDK
gateway and the simulator): the parameters our requests become, and the
``Stripe-Signature`` header."""
