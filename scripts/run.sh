#!/usr/bin/env bash
# `make run`: installs the Gallery into .venv, prepares the local database with the reference
# catalogue and demo data, then serves it at http://127.0.0.1:${PORT:-8000} with a real Celery
# worker beside it. Everything runs on the embedded defaults of gallery/settings.py (SQLite in
# data/gallery.sqlite3, the filesystem broker in data/broker): no service and no variable needed.
# Ctrl-C stops the server and the worker.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/services.sh
source scripts/services.sh

PORT=${PORT:-8000}

ensure_venv
step "Installing the Gallery and its dependencies into .venv (pip install -e .)"
python -m pip install --quiet -e .

# SQLite does not create the folder of its file, nor kombu the folders of its filesystem broker.
mkdir -p data/broker/queue data/broker/processed data/broker/control

step "Applying database migrations (data/gallery.sqlite3)"
python manage.py migrate --noinput

# Runs a management command of the project when it exists; one line when it does not (yet).
run_command_if_present() {
    local name=$1
    if python manage.py help "$name" >/dev/null 2>&1; then
        step "python manage.py $name"
        python manage.py "$name"
    else
        step "python manage.py $name: not available in this version, skipped"
    fi
}
run_command_if_present load_reference_catalog
run_command_if_present make_demo_data

worker_pid=""
server_pid=""
stop_processes() {
    local pid
    for pid in $server_pid $worker_pid; do
        kill -0 "$pid" 2>/dev/null || continue
        kill -TERM "$pid" 2>/dev/null || true
    done
    if [ -n "$worker_pid" ] && kill -0 "$worker_pid" 2>/dev/null; then
        echo "Stopping the Celery worker (pid $worker_pid)"
        # A warm shutdown lets running tasks finish; bounded so that the script always ends.
        for _ in $(seq 30); do
            kill -0 "$worker_pid" 2>/dev/null || break
            sleep 0.5
        done
        kill -KILL "$worker_pid" 2>/dev/null || true
    fi
}
trap stop_processes EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "Starting a Celery worker (log in data/worker.log)"
celery -A gallery worker --loglevel=INFO --concurrency=2 >data/worker.log 2>&1 &
worker_pid=$!

# Bounded wait for the worker's "ready" line, so that a worker that cannot start is seen here
# rather than when the first task stays queued.
for _ in $(seq 60); do
    grep -q 'ready\.' data/worker.log 2>/dev/null && break
    if ! kill -0 "$worker_pid" 2>/dev/null; then
        echo "The Celery worker stopped at start; the end of data/worker.log:" >&2
        tail -n 20 data/worker.log >&2
        exit 1
    fi
    sleep 0.5
done
if grep -q 'ready\.' data/worker.log; then
    step "Celery worker ready (pid $worker_pid)"
else
    step "Celery worker still starting (pid $worker_pid): see data/worker.log"
fi

step "Serving the Gallery at http://127.0.0.1:$PORT (Ctrl-C stops the server and the worker)"
# --insecure: serve static/ live although DEBUG is off (the default), as collectstatic and
# whitenoise do in production. In the background and waited for, so that the traps run at
# once on Ctrl-C or a TERM.
python manage.py runserver --insecure "127.0.0.1:$PORT" &
server_pid=$!
wait "$server_pid"
