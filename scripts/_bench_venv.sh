# shellcheck shell=bash
# Sourced by scripts/bench: makes .venv-bench (the peers, matplotlib) and .venv-bench-arq (arq)
# hold what benchmarks/requirements-*.txt pin. They are benchmark tools, never jobpool dependencies.
# As in _venv.sh, an install is skipped while the requirement file's hash matches the stamp.

_bench_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

_bench_venv() {  # _bench_venv DIR REQUIREMENTS
    local venv="$_bench_root/$1" reqs="$_bench_root/$2" hash
    if [ ! -x "$venv/bin/python" ]; then
        echo "creating $venv" >&2
        "${PYTHON:-python3}" -m venv "$venv"
        "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
    fi
    hash="$(sha256sum "$reqs" | cut -d' ' -f1)"
    if [ "$(cat "$venv/.bench-installed" 2>/dev/null || true)" != "$hash" ]; then
        echo "installing $2 into $venv" >&2
        "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$reqs"
        echo "$hash" >"$venv/.bench-installed"
    fi
}

_bench_venv .venv-bench benchmarks/requirements-peers.txt
# arq is optional: without its venv the benchmark skips it and says so.
_bench_venv .venv-bench-arq benchmarks/requirements-arq.txt || echo "arq venv failed; skipping arq" >&2
unset -f _bench_venv
unset _bench_root
