"""Alembic migrations for arche-predict's database (see `lti_app.migrate`)."""
