"""Alembic migrations, shipped inside the package so `pintar db upgrade` can run them."""
