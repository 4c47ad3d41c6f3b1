"""Blueprints: HTTP in, services called, HTML or JSON out."""
