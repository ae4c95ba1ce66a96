# The one image of the Gallery: the web server (gunicorn), the Celery worker, beat and Flower.
# Built and run by docker-compose.yml; settings come from the environment (see .env.example).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# pg_dump/pg_restore for `manage.py backup` and `restore`: the client must match the server
# (PostgreSQL 16 in docker-compose.yml), so it comes from the PostgreSQL project's repository.
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl ca-certificates gnupg \
    && install -d /usr/share/postgresql-common/pgdg \
    && curl -fsSL https://www.postgresql.org/media/keys/ACCC4CF8.asc \
       | gpg --dearmor -o /usr/share/postgresql-common/pgdg/apt.postgresql.org.gpg \
    && echo "deb [signed-by=/usr/share/postgresql-common/pgdg/apt.postgresql.org.gpg] https://apt.postgresql.org/pub/repos/apt bookworm-pgdg main" \
       > /etc/apt/sources.list.d/pgdg.list \
    && apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client-16 \
    && apt-get purge -y gnupg && apt-get autoremove -y \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system gallery \
    && useradd --system --gid gallery --create-home --home-dir /home/gallery gallery

WORKDIR /app

# Dependencies first, in their own layer, so that a change of code does not reinstall them:
# with only pyproject.toml present the project builds empty and pip installs what it requires
# (the empty build's leftovers are removed). Flower is the deployment's monitor, not a
# dependency of the project.
COPY pyproject.toml README.md ./
RUN pip install . "flower>=2.0" && rm -rf build ./*.egg-info

# The code, installed in place (-e) so that BASE_DIR is /app, with templates/ and static/ beside
# the packages rather than in site-packages.
COPY . .
RUN pip install --no-deps -e .

# Static files are collected at build (served by whitenoise with its manifest), with a key used
# for nothing else: the real SECRET_KEY comes from the environment at run time.
RUN SECRET_KEY=collectstatic-only GALLERY_PRODUCTION=1 python manage.py collectstatic --noinput

# Data written at run time (media, staged uploads) lives in /data, a volume of the deployment.
RUN mkdir -p /data/media /data/staging && chown -R gallery:gallery /data
ENV GALLERY_DATA_DIR=/data \
    MEDIA_ROOT=/data/media

USER gallery
EXPOSE 8000 5555
CMD ["gunicorn", "gallery.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "120", "--access-logfile", "-"]
