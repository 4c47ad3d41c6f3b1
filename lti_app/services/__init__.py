"""Application services: the use cases shared by the web app, the scheduler and the CLI.

A service takes a SQLAlchemy `Session` (and whatever else it needs) as arguments, never imports
Flask, and never commits: the caller owns the unit of work.
"""
