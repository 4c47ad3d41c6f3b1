"""The `csv` source: Moodle's own log-report download, imported rather than pulled.

The parser lives in `moodle_client.csv_logs` and the import in `services.imports`
(`arche-predict import-logs`); a site whose logs come this way needs no web-service token for
its logs, and the nightly sync skips the log step with this explanation.
"""

from __future__ import annotations

from lti_app.log_sources import LogSourceSpec

SOURCE = LogSourceSpec(
    name="csv",
    description="Moodle's log-report download, imported with `arche-predict import-logs`",
    not_pulled=(
        "'csv' logs cannot be pulled; import the CSV download with "
        "`arche-predict import-logs FILE --course ID`"
    ),
)
