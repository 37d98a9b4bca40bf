"""Render the app icon's SVG master into the PNG sizes, a Windows .ico and a macOS .icns.

Qt's own SVG renderer and image writers do it, so the build needs nothing beyond PySide6.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage, QImageWriter, QPainter
from PySide6.QtSvg import QSvgRenderer

ROOT = Path(__file__).resolve().parent.parent
MASTER = ROOT / "resources" / "icons" / "scc-desktop.svg"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def render(renderer: QSvgRenderer, size: int) -> QImage:
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    renderer.render(painter)
    painter.end()
    return image


def main(out_dir: str) -> int:
    app = QGuiApplication(sys.argv[:1])  # noqa: F841 - image plugins need an application
    target = Path(out_dir)
    target.mkdir(parents=True, exist_ok=True)
    renderer = QSvgRenderer(str(MASTER))
    if not renderer.isValid():
        print(f"cannot read {MASTER}", file=sys.stderr)
        return 1
    for size in SIZES:
        render(renderer, size).save(str(target / f"scc-desktop-{size}.png"))
    formats = {bytes(f).decode() for f in QImageWriter.supportedImageFormats()}
    for fmt, size in (("ico", 256), ("icns", 512)):
        if fmt in formats:
            render(renderer, size).save(str(target / f"scc-desktop.{fmt}"), fmt)
        else:
            print(f"note: this Qt cannot write .{fmt}; the bundle uses the default icon")
    print(f"icons rendered into {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "build" / "icons")))
