"""Meter ⇄ hub protocol: STS prepaid tokens and the SMS frame protocol. Pure: no I/O."""
