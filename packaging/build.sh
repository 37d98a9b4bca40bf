#!/usr/bin/env bash
# Build the bundle: dist/scc-desktop/ (one folder; ONEFILE=1 for a single file), then smoke-test it.
# Needs the dev extras: python3 -m pip install -e '.[dev]'
set -euo pipefail
cd "$(dirname "$0")/.."
python3 packaging/render_icons.py build/icons
python3 -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath dist --workpath build/pyinstaller packaging/scc-desktop.spec
if [ "${ONEFILE:-0}" = "1" ]; then
    python3 packaging/smoke_test.py dist/scc-desktop
else
    python3 packaging/smoke_test.py dist/scc-desktop/scc-desktop
fi
du -sh dist/scc-desktop* | sed 's/^/bundle size: /'
