# shellcheck shell=bash
# Shell functions shared by scripts/run.sh, scripts/test.sh and .ci/run (sourced, not run):
# the project's virtual environment, progress lines, and whether the local PostgreSQL and Redis
# answer. They need nothing but bash and coreutils, so they work before anything is installed.
# The sourcing script sets `set -euo pipefail` and runs from the repository root.

# A progress line with the seconds since the calling script started, so slow phases show.
step() {
    printf '[%4ss] %s\n' "$SECONDS" "$*"
}

# The first of python3.11 / python3 that is Python 3.11 or newer (the project's target).
find_python() {
    local candidate
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

# Creates .venv when it is missing and puts it first on PATH (python, pip, ruff, celery...).
ensure_venv() {
    if [ ! -x .venv/bin/python ]; then
        local python
        if ! python=$(find_python); then
            echo "The Gallery needs Python 3.11 or newer: neither python3.11 nor python3 is one." >&2
            exit 1
        fi
        step "Creating the virtual environment .venv ($("$python" --version))"
        if ! "$python" -m venv .venv; then
            # Debian ships venv's pip bootstrap in a separate package.
            rm -rf .venv
            echo "Could not create .venv: on Debian, install python3-venv (apt-get install python3-venv)." >&2
            exit 1
        fi
    fi
    export VIRTUAL_ENV="$PWD/.venv"
    export PATH="$VIRTUAL_ENV/bin:$PATH"
}

# PostgreSQL answers at 127.0.0.1:5432: pg_isready where the client is installed, otherwise an
# open TCP port (bash's /dev/tcp), each bounded to a few seconds.
postgres_answers() {
    if command -v pg_isready >/dev/null 2>&1; then
        pg_isready --quiet --host=127.0.0.1 --port=5432 --timeout=3
    else
        timeout 3 bash -c '</dev/tcp/127.0.0.1/5432' 2>/dev/null
    fi
}

# Redis answers PING with +PONG at 127.0.0.1:6379 (spoken over bash's /dev/tcp: no client needed).
redis_answers() {
    # shellcheck disable=SC2016  # the inner script is bash's, expanded there
    timeout 3 bash -c '
        exec 3<>/dev/tcp/127.0.0.1/6379 || exit 1
        printf "PING\r\n" >&3
        IFS= read -r reply <&3
        [[ $reply == +PONG* ]]
    ' 2>/dev/null
}

# Waits until a check passes, at most $1 seconds: wait_until SECONDS NAME CHECK.
wait_until() {
    local limit=$1 name=$2 check=$3 waited=0
    until "$check"; do
        if [ "$waited" -ge "$limit" ]; then
            echo "$name did not answer within ${limit}s." >&2
            return 1
        fi
        sleep 1
        waited=$((waited + 1))
    done
}
