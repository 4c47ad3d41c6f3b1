# arche-predict: web app (gunicorn) and, with another command, the scheduler.
# The install steps are the Makefile's: a venv, the pinned runtime lock, then the project itself.
# No Docker engine runs where this project is developed, so this file is kept correct by
# construction (same steps as `make`), not by a CI build.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    ARCHE_PREDICT_APP__HOST=0.0.0.0 \
    ARCHE_PREDICT_APP__INSTANCE_PATH=/var/lib/arche-predict

RUN groupadd --system arche && useradd --system --gid arche --home-dir /app arche

WORKDIR /app

# 1. The venv and the pinned runtime dependencies (cached while the lock is unchanged).
#    torch==2.13.0 is taken as its CPU build from the PyTorch CPU index, as `make` does on a
#    machine without a local wheel.
COPY requirements/base.txt requirements/base.txt
RUN python -m venv "$VIRTUAL_ENV" \
 && pip install --upgrade "pip>=24.2" \
 && pip install --extra-index-url https://download.pytorch.org/whl/cpu -r requirements/base.txt

# 2. The project itself, editable as in `make`, so config.example.toml and migrations/ stay found.
COPY pyproject.toml README.md config.example.toml ./
COPY lti_app lti_app
COPY moodle_client moodle_client
COPY ml ml
COPY simulation simulation
COPY migrations migrations
RUN pip install --no-deps --no-build-isolation -e . \
 && mkdir -p /var/lib/arche-predict \
 && chown -R arche:arche /var/lib/arche-predict

USER arche
EXPOSE 8000
VOLUME ["/var/lib/arche-predict"]

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"

# Migrations first (idempotent), then gunicorn. Secrets and the database URL come from
# ARCHE_PREDICT_* environment variables or a mounted config file (ARCHE_PREDICT_CONFIG).
CMD ["sh", "-c", "arche-predict db upgrade && exec arche-predict serve"]
