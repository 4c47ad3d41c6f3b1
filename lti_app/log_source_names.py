"""The names of the log sources this tool ships, and the module describing each.

A leaf (no imports), so that the configuration (`moodle.log_source`) and the models (the
`moodle_site.log_source` CHECK) can read it while `lti_app.log_sources`, the registry that loads
these modules, may itself use the configuration and the models.
"""

from __future__ import annotations

# The sources this tool ships: name -> the module whose SOURCE describes it. One line each.
DECLARED: dict[str, str] = {
    "ws": "lti_app.services.log_sources.ws",
    "db": "lti_app.services.log_sources.db",
    "csv": "lti_app.services.log_sources.csv",
}
