"""A client for Moodle's REST web services and the log sources. Depends on `requests` only.

Public API (import from here):

- ``MoodleClient`` and its typed results (``SiteInfo``, ``Course``, ``EnrolledUser``,
  ``GradeReport``, ``CourseSection``, ``ActivityCompletion``);
- the error hierarchy rooted at ``MoodleError``;
- ``LogRow``, ``LogPage``, the ``LogSource`` protocol and the ``ws`` and ``csv`` sources;
- the CSV readers ``read_log_csv`` and ``read_grades_csv`` (errors: ``CsvImportError``);
- ``check``/``run_check`` for ``arche-predict moodle check``.
"""

from moodle_client.check import CheckReport, check, probe_course, required_functions, run_check
from moodle_client.client import MoodleClient, encode_params, error_from_body
from moodle_client.csv_grades import GradeColumn, GradeExport, GradeExportRow, read_grades_csv
from moodle_client.csv_logs import CsvLogImport, CsvLogSource, read_log_csv
from moodle_client.csvfiles import CsvImportError
from moodle_client.errors import (
    AccessDeniedError,
    InvalidParameterError,
    InvalidRecordError,
    InvalidTokenError,
    MalformedResponseError,
    MissingCapabilityError,
    MoodleError,
    MoodleHTTPError,
    MoodleRemoteError,
    MoodleTimeoutError,
    MoodleUnavailableError,
)
from moodle_client.logs import LOG_COLUMNS, LogPage, LogRow, LogSource, WsLogSource
from moodle_client.requirements import GRADING_FUNCTION, LOG_FUNCTION, REQUIRED_FUNCTIONS
from moodle_client.types import (
    PROFILE_FIELDS,
    ActivityCompletion,
    Course,
    CourseGrading,
    CourseModule,
    CourseSection,
    EnrolledUser,
    GradeItem,
    GradeReport,
    Role,
    SiteInfo,
    UserGrades,
)

__all__ = [
    "GRADING_FUNCTION",
    "LOG_COLUMNS",
    "LOG_FUNCTION",
    "PROFILE_FIELDS",
    "REQUIRED_FUNCTIONS",
    "AccessDeniedError",
    "ActivityCompletion",
    "CheckReport",
    "Course",
    "CourseGrading",
    "CourseModule",
    "CourseSection",
    "CsvImportError",
    "CsvLogImport",
    "CsvLogSource",
    "EnrolledUser",
    "GradeColumn",
    "GradeExport",
    "GradeExportRow",
    "GradeItem",
    "GradeReport",
    "InvalidParameterError",
    "InvalidRecordError",
    "InvalidTokenError",
    "LogPage",
    "LogRow",
    "LogSource",
    "MalformedResponseError",
    "MissingCapabilityError",
    "MoodleClient",
    "MoodleError",
    "MoodleHTTPError",
    "MoodleRemoteError",
    "MoodleTimeoutError",
    "MoodleUnavailableError",
    "Role",
    "SiteInfo",
    "UserGrades",
    "WsLogSource",
    "check",
    "encode_params",
    "error_from_body",
    "probe_course",
    "read_grades_csv",
    "read_log_csv",
    "required_functions",
    "run_check",
]
