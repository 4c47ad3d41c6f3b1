"""The `arche-predict` command line: database, configuration, Moodle sites, and the server.

Every command loads `Settings` once (from `--config` or $ARCHE_PREDICT_CONFIG) and calls the
same services as the web app. Expected failures (bad config, unreachable database) print one
line starting with ``Error:`` and exit non-zero; they never print a traceback.

One module per command group (`db`, `config`, `site`, `course`, `sync`, `keys`, `lti`,
`imports`, `moodle`, `models`, `privacy`, `demo`, `serve`, `scheduler`); the shared pieces
(the process's `CliContext`, `friendly_errors`, `pass_ctx`) live in `lti_app.cli.common`.
`COMMANDS` below is the one place where commands are attached to `main`. A module imports only
click at load time: `arche-predict --help` lists every command without loading SQLAlchemy, the
configuration or the ML stack.
"""

from __future__ import annotations

import click

from lti_app.cli import (
    config,
    course,
    db,
    demo,
    imports,
    keys,
    lti,
    models,
    moodle,
    privacy,
    scheduler,
    serve,
    site,
    sync,
)
from lti_app.cli.common import CliContext, friendly_errors, pass_ctx

__all__ = ["COMMANDS", "CliContext", "friendly_errors", "main", "pass_ctx"]


@click.group()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="TOML config file (default: $ARCHE_PREDICT_CONFIG, else built-in defaults).",
)
@click.version_option(package_name="arche-predict")
@click.pass_context
def main(ctx: click.Context, config_path: str | None) -> None:
    """arche-predict: learning analytics for Moodle, as an LTI 1.3 tool."""
    ctx.obj = CliContext(config_path)
    ctx.call_on_close(ctx.obj.close)  # one engine per process, disposed when the command ends


COMMANDS: tuple[click.Command, ...] = (
    db.db,
    config.config_group,
    site.site,
    course.course,
    sync.sync_command,
    keys.keys,
    lti.lti,
    imports.import_logs,
    imports.import_grades,
    moodle.moodle,
    models.train,
    models.predict,
    models.evaluate,
    models.export_onnx_command,
    privacy.privacy,
    demo.demo,
    serve.serve,
    scheduler.scheduler,
    scheduler.worker,
)
for _command in COMMANDS:
    main.add_command(_command)
