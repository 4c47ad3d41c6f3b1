"""`arche-predict config`: configuration files and secrets."""

from __future__ import annotations

import secrets
from pathlib import Path

import click

from lti_app.cli.common import CliContext, friendly_errors, pass_ctx

EXAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "config.example.toml"


@click.group("config")
def config_group() -> None:
    """Configuration files and secrets."""


@config_group.command("check")
@pass_ctx
@friendly_errors
def config_check(ctx: CliContext) -> None:
    """Validate the configuration and print it, with secrets masked."""
    from lti_app.crypto import SecretBox
    from lti_app.observability import redact

    settings = ctx.settings
    click.echo(f"# source: {settings.source}")
    for section, values in redact(settings.model_dump()).items():
        click.echo(f"[{section}]")
        for key, value in values.items():
            click.echo(f"{key} = {value!r}")
    if settings.security.encryption_key:
        SecretBox.from_settings(settings)  # validates the key format too


@config_group.command("generate-key")
def config_generate_key() -> None:
    """Print a fresh encryption key for security.encryption_key."""
    from lti_app.crypto import generate_key

    click.echo(generate_key())


@config_group.command("init")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.option("--demo", is_flag=True, help="A demo config: simulated Moodle and LTI platform.")
def config_init(path: Path, force: bool, demo: bool) -> None:
    """Write a config file from the documented example, with fresh secrets filled in."""
    from lti_app.config import load_settings
    from lti_app.crypto import generate_key

    if path.exists() and not force:
        raise click.ClickException(f"{path} exists; pass --force to overwrite it")
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8")
    text = text.replace('secret_key = ""', f'secret_key = "{secrets.token_urlsafe(48)}"', 1)
    text = text.replace('encryption_key = ""', f'encryption_key = "{generate_key()}"', 1)
    if demo:
        text = text.replace("\nenabled = false\n", "\nenabled = true\n", 1)
        text = text.replace('public_url = ""', 'public_url = "http://127.0.0.1:8000"', 1)
        text = text.replace('log_format = "json"', 'log_format = "console"', 1)
        # Quicker model reports, so the demo is ready within a few minutes on a laptop.
        text = text.replace("bootstrap_samples = 1000", "bootstrap_samples = 300", 1)
        text = text.replace("permutation_repeats = 30", "permutation_repeats = 10", 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    load_settings(path, environ={})  # the written file must load
    click.echo(f"wrote {path} (mode 600): keep it secret, it holds the encryption key")
