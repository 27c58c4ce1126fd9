"""Adapters that connect the engine to telephony systems (Asterisk first)."""
