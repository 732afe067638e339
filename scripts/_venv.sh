# Sourced by scripts/demo and scripts/test: make ./.venv and install ecgwatch
# into it (editable) with the extras named in $ECGWATCH_EXTRAS. Reinstalls only
# when pyproject.toml changed since the last install.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${ECGWATCH_VENV:-$root/.venv}"
py="${PYTHON:-python3}"
if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    echo "ecgwatch needs Python 3.10 or newer as '$py' (set PYTHON=...)." >&2
    exit 1
fi
[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
spec=".${ECGWATCH_EXTRAS:+[$ECGWATCH_EXTRAS]}"
stamp="$venv/.ecgwatch-installed"
want="$(cat "$root/pyproject.toml" | cksum) $spec"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    (cd "$root" && "$venv/bin/python" -m pip install --quiet -e "$spec")
    echo "$want" > "$stamp"
fi
export PATH="$venv/bin:$PATH"
cd "$root"
