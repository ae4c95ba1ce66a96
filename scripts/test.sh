#!/usr/bin/env bash
# `make test`: installs the Gallery with its test tools into .venv, provides Debian's chromium
# for the browser tests, uses the local PostgreSQL and Redis when they answer (SQLite and the
# embedded broker otherwise), then runs ruff and pytest. Arguments go to pytest:
#   scripts/test.sh -k timeline        make test ARGS='-m "not integration and not browser"'
# Exits with pytest's status.
#
# Variables it reads: DATABASE_URL, CELERY_BROKER_URL (kept when set), GALLERY_NO_BROWSER=1 (no
# chromium install; the browser tests skip), GALLERY_REQUIRE_SERVICES=1 (fail when PostgreSQL or
# Redis does not answer instead of falling back; set by .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/services.sh
source scripts/services.sh

# Debian packages the suite drives: chromium for the browser tests (browsers are never
# downloaded: no `playwright install`) and STILTS for votlint on the VO services.
provide_debian_tools() {
    local packages=()
    if [ -n "${GALLERY_NO_BROWSER:-}" ]; then
        step "GALLERY_NO_BROWSER is set: the browser tests skip"
    elif [ ! -x /usr/bin/chromium ]; then
        packages+=(chromium)
    fi
    command -v stilts >/dev/null 2>&1 || packages+=(stilts)
    [ ${#packages[@]} -eq 0 ] && return

    local as_root=() log
    if [ "$(id -u)" -ne 0 ]; then
        # sudo -n never prompts: a password request would hang an unattended run.
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            as_root=(sudo -n)
        fi
    fi
    if ! command -v apt-get >/dev/null 2>&1 || { [ "$(id -u)" -ne 0 ] && [ ${#as_root[@]} -eq 0 ]; }; then
        missing_tools "${packages[@]}"
        return
    fi

    step "Installing Debian's ${packages[*]} for the tests (apt-get install)"
    log=$(mktemp -t gallery-apt.XXXXXX.log)
    local apt=("${as_root[@]}" env DEBIAN_FRONTEND=noninteractive timeout 900 apt-get)
    # A stale package list gives 404s: refresh it once and try again.
    if "${apt[@]}" install -y -qq "${packages[@]}" >"$log" 2>&1 ||
        { "${apt[@]}" update -qq >>"$log" 2>&1 &&
            "${apt[@]}" install -y -qq "${packages[@]}" >>"$log" 2>&1; }; then
        rm -f "$log"
    else
        missing_tools "${packages[@]}"
        step "(apt-get log: $log)"
    fi
}

missing_tools() {
    local package
    for package in "$@"; do
        case "$package" in
            chromium) [ -x /usr/bin/chromium ] || no_browser "chromium could not be installed" ;;
            stilts) command -v stilts >/dev/null 2>&1 ||
                step "stilts could not be installed: the votlint checks skip" ;;
        esac
    done
}

no_browser() {
    step "$1: the browser tests will skip"
    export GALLERY_NO_BROWSER=1
}

# PostgreSQL and Redis when they answer on this machine; the embedded defaults otherwise.
choose_services() {
    local missing=()
    if [ -z "${DATABASE_URL:-}" ]; then
        if postgres_answers; then
            export DATABASE_URL=postgres://postgres@127.0.0.1:5432/gallery
        else
            missing+=(PostgreSQL)
        fi
    fi
    if [ -z "${CELERY_BROKER_URL:-}" ]; then
        if redis_answers; then
            export CELERY_BROKER_URL=redis://127.0.0.1:6379/15
            export CELERY_RESULT_BACKEND=${CELERY_RESULT_BACKEND:-$CELERY_BROKER_URL}
            export GALLERY_TEST_REDIS_URL=${GALLERY_TEST_REDIS_URL:-$CELERY_BROKER_URL}
        else
            missing+=(Redis)
        fi
    fi

    local what
    what=$(IFS=/; echo "${missing[*]}")
    if [ -n "$what" ] && [ "${GALLERY_REQUIRE_SERVICES:-}" = 1 ]; then
        echo "GALLERY_REQUIRE_SERVICES=1 but $what not reachable at 127.0.0.1: no fallback." >&2
        exit 1
    fi
    local database=SQLite broker="the embedded broker"
    case "${DATABASE_URL:-}" in
        "") ;;
        postgres*) database=PostgreSQL ;;
        *) database=${DATABASE_URL%%:*} ;;
    esac
    case "${CELERY_BROKER_URL:-}" in
        "" | filesystem*) ;;
        redis*) broker=Redis ;;
        *) broker=${CELERY_BROKER_URL%%:*} ;;
    esac
    if [ -n "$what" ]; then
        step "$what not reachable: tests run on $database and $broker"
    else
        step "Tests run on $database and $broker"
    fi
}

ensure_venv
step "Installing the Gallery with its test tools into .venv (pip install -e '.[test]')"
python -m pip install --quiet -e '.[test]'

provide_debian_tools
choose_services

step "ruff check ."
ruff check .

step "python -m pytest $*"
status=0
python -m pytest "$@" || status=$?
step "pytest finished with exit status $status"
exit "$status"
