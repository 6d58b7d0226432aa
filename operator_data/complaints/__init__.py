"""Complaints (pengaduan): what customers report to the helpdesk by phone or by SMS
(`ADUAN <teks>`), worked to a resolution and measured against the telecom QoS target
(15 working days, the rest by the month's last working day; records kept >= 3 months).

- `calendar`: the working-day clock and its holiday calendar (pure; data in holidays/);
- `report`: the monthly, disruption and annual figures from complaint facts (pure);
- `tables`: the tables (migration 0002_complaints);
- `store`: recording and working complaints, and reading the facts for the report (I/O);
- `sms`: the ticket a customer's ADUAN opens, written in the hub's reply transaction.

This module imports nothing, so `operator_data.store` can register the tables cheaply.
"""
