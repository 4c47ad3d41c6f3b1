"""The Dockerfile and docker-compose.yml cannot be built here (no Docker engine), so they are
kept correct by construction; these checks hold them to the Makefile and to the real CLI."""

from __future__ import annotations

import re
from pathlib import Path

import click

from lti_app.cli import main

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
COMPOSE = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
MAKEFILE = (ROOT / "Makefile").read_text(encoding="utf-8")


def _cli_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    paths: set[tuple[str, ...]] = set()
    for name, cmd in group.commands.items():
        paths.add((*prefix, name))
        if isinstance(cmd, click.Group):
            paths |= _cli_paths(cmd, (*prefix, name))
    return paths


def test_every_copied_path_exists() -> None:
    for line in DOCKERFILE.splitlines():
        if line.startswith("COPY "):
            *sources, _dest = line.split()[1:]
            for src in sources:
                assert (ROOT / src).exists(), f"Dockerfile copies missing {src}"


def test_docker_installs_like_make() -> None:
    assert "FROM python:3.11-slim" in DOCKERFILE
    # Same lock (runtime part), same editable no-deps install of the project.
    assert "-r requirements/base.txt" in DOCKERFILE
    assert "-r requirements/dev.txt" in MAKEFILE
    # dev.txt is compiled under the constraint of base.txt, so it pins the same runtime versions.
    assert "-c base.txt" in (ROOT / "requirements/dev.in").read_text()
    install_project = "--no-deps --no-build-isolation -e ."
    assert install_project in DOCKERFILE
    assert install_project in MAKEFILE
    assert re.search(r"^USER (?!root)\w+", DOCKERFILE, re.MULTILINE), "must run as non-root"


def test_commands_in_deployment_files_exist() -> None:
    known = _cli_paths(main)
    used = re.findall(r"arche-predict ((?:[a-z-]+ ?){1,2})", DOCKERFILE + COMPOSE)
    assert used
    for phrase in used:
        words = tuple(phrase.split())
        assert words[:1] in known or words[:2] in known, f"unknown command: arche-predict {phrase}"
    # Migrations run before the server starts, in both files.
    assert re.search(r"arche-predict db upgrade && exec arche-predict serve", DOCKERFILE)
    assert "arche-predict db upgrade && exec arche-predict scheduler" in COMPOSE


def test_compose_has_app_scheduler_and_postgres() -> None:
    for service in ("db:", "app:", "scheduler:"):
        assert re.search(rf"^  {service}", COMPOSE, re.MULTILINE), service
    assert "image: postgres:" in COMPOSE
    assert "ARCHE_PREDICT_DATABASE__URL: postgresql+psycopg://" in COMPOSE
