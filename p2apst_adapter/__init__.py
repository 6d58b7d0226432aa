"""The ISO 8583 link to PLN's P2APST, its simulator, and the daily AP2T batch."""
