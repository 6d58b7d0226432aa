"""Simulated meters, their modems, customers' phones and the simulated SMS network."""
