"""SMS cost data for the mobile operator: the successful SMS per customer and flow for a
day, as a CSV file and a JSON manifest (0066 art. 6(4): SMS costs are the customer's, at
the operator's price).

`rows` is the format (columns, ordering, cells, manifest) with no I/O; `export` streams a
day out of the cost ledger (`cost_ledger`, written by hub/charging.py) into the files.
"""

from operator_data.sms_costs.export import export_day
from operator_data.sms_costs.rows import COLUMNS, SCHEMA_VERSION, CostGroup, CostManifest

__all__ = ["COLUMNS", "SCHEMA_VERSION", "CostGroup", "CostManifest", "export_day"]
