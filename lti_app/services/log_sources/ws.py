"""The `ws` source: the companion plugin's web-service function (the default for nightly sync).

The protocol itself (`WsLogSource`: paging after a log id, the plugin's cap) belongs to
`moodle_client`; this module only says how a course gets one.
"""

from __future__ import annotations

from lti_app.log_sources import LogSourceSpec, SourceContext
from moodle_client.logs import LogSource, WsLogSource


def _build(context: SourceContext) -> LogSource:
    assert context.client is not None  # `needs_client`: checked by the registry
    return WsLogSource(
        context.client,
        context.course.moodle_course_id,
        page_size=context.settings.moodle.page_size,
    )


SOURCE = LogSourceSpec(
    name="ws",
    description="the companion plugin's web-service function (the default)",
    build=_build,
    needs_client=True,
)
