"""Render ``resources/desktop-chat.svg`` into the raster icons the installers need, into ``resources/icons/``.

``.venv/bin/python packaging/make_icons.py`` after changing the SVG (the outputs are committed, so that no
build needs to render them):

- ``desktop-chat-<N>.png`` for the freedesktop icon theme sizes (the .deb installs them under
  ``/usr/share/icons/hicolor/<N>x<N>/apps/``);
- ``desktop-chat.ico`` (Windows: the executable, the installer, the Start menu entry), PNG-compressed entries;
- ``desktop-chat.icns`` (macOS: the .app), PNG entries.

Both container formats are written here by hand: each is a small header, a table of entries and the PNG
data, and neither Qt's plugins nor a package in the environment writes several sizes into one file.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QRectF, Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "resources" / "desktop-chat.svg"
OUTPUT = ROOT / "resources" / "icons"
THEME_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
# ICNS entry types holding PNG data, by pixel size (the @2x types share the sizes of larger 1x ones).
ICNS_TYPES = (
    (b"icp4", 16),
    (b"icp5", 32),
    (b"ic11", 32),
    (b"ic12", 64),
    (b"ic07", 128),
    (b"ic08", 256),
    (b"ic13", 256),
    (b"ic09", 512),
    (b"ic14", 512),
    (b"ic10", 1024),
)


def render_png(renderer: QSvgRenderer, size: int) -> bytes:
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter, QRectF(0, 0, size, size))
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, "PNG"):
        raise RuntimeError(f"could not encode the {size}px icon as PNG")
    return bytes(data.data())


def ico(pngs: dict[int, bytes]) -> bytes:
    """An ICO file: ICONDIR, one ICONDIRENTRY per size, then the PNG data (Windows Vista and later)."""
    sizes = sorted(pngs)
    header = struct.pack("<HHH", 0, 1, len(sizes))
    offset = len(header) + 16 * len(sizes)
    entries, blobs = b"", b""
    for size in sizes:
        data = pngs[size]
        side = 0 if size >= 256 else size  # 0 means 256
        entries += struct.pack("<BBBBHHII", side, side, 0, 0, 1, 32, len(data), offset)
        blobs += data
        offset += len(data)
    return header + entries + blobs


def icns(pngs: dict[int, bytes]) -> bytes:
    """An ICNS file: the ``icns`` header, then one typed, length-prefixed PNG per entry."""
    body = b"".join(kind + struct.pack(">I", 8 + len(pngs[size])) + pngs[size] for kind, size in ICNS_TYPES)
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def main() -> int:
    _app = QGuiApplication(sys.argv[:1])
    renderer = QSvgRenderer(str(SOURCE))
    if not renderer.isValid():
        raise SystemExit(f"{SOURCE} is not a valid SVG")
    sizes = sorted(set(THEME_SIZES) | set(ICO_SIZES) | {size for _kind, size in ICNS_TYPES})
    pngs = {size: render_png(renderer, size) for size in sizes}
    OUTPUT.mkdir(exist_ok=True)
    for size in THEME_SIZES:
        (OUTPUT / f"desktop-chat-{size}.png").write_bytes(pngs[size])
    (OUTPUT / "desktop-chat.ico").write_bytes(ico({size: pngs[size] for size in ICO_SIZES}))
    (OUTPUT / "desktop-chat.icns").write_bytes(icns(pngs))
    for path in sorted(OUTPUT.iterdir()):
        print(path.relative_to(ROOT), path.stat().st_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
