"""The helpdesk web app and the operations API (FastAPI): see `operator_data.api.app`.

Kept free of imports so that `operator_data.store` can register this package's tables
(`operator_data.api.tables`) without pulling in FastAPI.
"""
