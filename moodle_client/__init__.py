"""A client for Moodle's REST web services. Depends on `requests` only."""
