# shellcheck shell=bash
# Sourced by scripts/*: makes .venv exist and hold the project as pyproject.toml describes it now.
# Reinstalling on every run would cost seconds and need the network, so the install is skipped
# while the hash of pyproject.toml matches the one stamped after the last successful install.

_jobpool_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_jobpool_venv="$_jobpool_root/.venv"
_jobpool_stamp="$_jobpool_venv/.jobpool-installed"

if [ ! -x "$_jobpool_venv/bin/python" ]; then
    echo "creating $_jobpool_venv" >&2
    "${PYTHON:-python3}" -m venv "$_jobpool_venv"
    "$_jobpool_venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
fi

_jobpool_hash="$(sha256sum "$_jobpool_root/pyproject.toml" | cut -d' ' -f1)"
if [ "$(cat "$_jobpool_stamp" 2>/dev/null || true)" != "$_jobpool_hash" ]; then
    echo "installing jobpool[test] into $_jobpool_venv" >&2
    (cd "$_jobpool_root" && "$_jobpool_venv/bin/python" -m pip install -q \
        --disable-pip-version-check -e '.[test]')
    echo "$_jobpool_hash" >"$_jobpool_stamp"
fi
unset _jobpool_hash _jobpool_stamp
