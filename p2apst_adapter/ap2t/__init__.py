"""The daily AP2T batch: non-transaction data per meter and day, as CSV plus a JSON manifest.

`records` defines the columns (data, one place); `export` streams a batch to disk with
constant memory; `delivery` hands it to AP2T (HTTP upload or directory drop) until it is
acknowledged; `receiver` is the AP2T receiving simulator used by tests and the demo.
"""

from p2apst_adapter.ap2t.export import Manifest, export_batch
from p2apst_adapter.ap2t.records import COLUMNS, SCHEMA_VERSION, DailyRecord

__all__ = ["COLUMNS", "SCHEMA_VERSION", "DailyRecord", "Manifest", "export_batch"]
