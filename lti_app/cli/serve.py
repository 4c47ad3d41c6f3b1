"""`arche-predict serve`: the web app under gunicorn."""

from __future__ import annotations

import click

from lti_app.cli.common import CliContext, friendly_errors, pass_ctx


@click.command("serve")
@click.option("--host", default=None, help="Overrides app.host.")
@click.option("--port", type=int, default=None, help="Overrides app.port.")
@click.option("--workers", type=int, default=None, help="Overrides app.workers.")
@pass_ctx
@friendly_errors
def serve(ctx: CliContext, host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the web app with gunicorn (production WSGI server)."""
    # No engine from the CLI's context here: each gunicorn worker's app makes its own.
    from lti_app.db import private_instance
    from lti_app.wsgi import GunicornApp

    settings = ctx.settings
    settings.require_secrets()
    private_instance(
        settings.instance_dir.resolve(), settings.model_root
    )  # before gunicorn writes its metric files
    bind = f"{host or settings.app.host}:{port or settings.app.port}"
    click.echo(f"serving on http://{bind}/ with {workers or settings.app.workers} workers")
    GunicornApp(settings, bind=bind, workers=workers or settings.app.workers).run()
