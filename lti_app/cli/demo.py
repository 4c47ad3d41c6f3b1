"""`arche-predict demo`: the whole pipeline on a simulated Moodle, served locally."""

from __future__ import annotations

import logging
import os
import sys

import click

from lti_app.cli.common import CliContext, friendly_errors, pass_ctx


@click.command("demo")
@click.option("--no-serve", is_flag=True, help="Prepare everything, print the URLs, then exit.")
@pass_ctx
@friendly_errors
def demo(ctx: CliContext, no_serve: bool) -> None:
    """Run the whole pipeline on a simulated Moodle and serve it with a development platform.

    Only with a demo configuration (`demo.enabled = true`, see `config init --demo`).
    """
    import subprocess

    from lti_app import migrate
    from lti_app.db import private_instance
    from lti_app.demo import prepare
    from lti_app.observability import configure_logging

    settings = ctx.settings
    settings.require_secrets()
    configure_logging("WARNING", "console")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the demo servers' request lines
    # Before the engine exists: SQLite creates its file inside the instance folder.
    private_instance(settings.instance_dir.resolve(), settings.model_root)
    migrate.upgrade(ctx.engine)
    click.echo("simulating a Moodle course, syncing it over web services, training…")
    setup = prepare(settings, ctx.session_factory)
    click.echo(f"simulated Moodle web service: {setup.moodle_url}")
    click.echo(f"predictions: {setup.scoring.status} ({setup.scoring.message})")
    click.echo(
        f"\n  Open {setup.platform_url}/  and press a launch button: teacher, learner or "
        "administrator, in English or in French.\n"
    )
    if no_serve:
        return
    scheduler = subprocess.Popen(  # noqa: S603 - our own CLI, same interpreter
        [sys.executable, "-m", "lti_app.cli", "--config", settings.source, "scheduler"]
    )
    master = os.getpid()
    try:
        from lti_app.wsgi import GunicornApp

        bind = f"{settings.app.host}:{settings.app.port}"
        GunicornApp(settings, bind=bind, workers=settings.app.workers).run()
    finally:
        # gunicorn forks its workers from this process, so a worker that stops leaves run()
        # through here too. The scheduler and the two demo servers are the master's: in a
        # worker the servers' threads do not exist (a fork copies the calling thread only), and
        # waiting for them to shut down held every worker until the master killed it, 20 s
        # after Ctrl-C.
        if os.getpid() == master:
            scheduler.terminate()
            setup.platform.stop()
            setup.moodle.stop()
            try:
                scheduler.wait(timeout=10)
            except subprocess.TimeoutExpired:
                scheduler.kill()
