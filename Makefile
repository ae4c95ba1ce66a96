# The two commands of the README, and a helper for the local demo data.
#   make run                      serve the Gallery at http://127.0.0.1:8000 with a Celery worker
#   make test                     ruff and the test suite
#   make test ARGS='-k timeline'  extra arguments go to pytest
.DEFAULT_GOAL := help
.PHONY: help run test demo-reset

ARGS ?=

help:
	@echo "make run         install into .venv, migrate, load the demo data, serve http://127.0.0.1:8000 with a Celery worker"
	@echo "make test        install the test tools, run ruff and pytest (extra pytest arguments: ARGS='...')"
	@echo "make demo-reset  delete the local database, media and queued tasks in data/ (make run builds them anew)"

run:
	bash scripts/run.sh

test:
	bash scripts/test.sh $(ARGS)

# Only the embedded defaults' files in data/: a DATABASE_URL elsewhere is left alone.
demo-reset:
	rm -rf data/gallery.sqlite3 data/gallery.sqlite3-wal data/gallery.sqlite3-shm \
		data/media data/staging data/broker data/worker.log
	@echo "Local demo data deleted: make run builds it anew."
