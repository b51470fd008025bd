"""What goes into the PyInstaller bundle, decided from what the app is measured to need.

The spec (``packaging/desktop-chat.spec``) imports this module; so does the packaging test. Every rule here
was measured (see ``packaging/README.md``): the bundle without the left-out parts still passes
``--smoke-test`` (offscreen), and the screenshot scenes of ``tests/gui/scenes.py`` run from the bundle on
Xvfb (xcb) paint the same pictures.

- Python: only the distributions ``desktop-chat`` needs at run time (its ``Requires-Dist`` closure, extras
  it asks for included) are bundled; the modules of everything else in the build environment (the dev and
  devstack tools: pytest, uvicorn's uvloop, pre-commit's PyYAML, ...) are excluded, even where a bundled
  library would import them optionally.
- Qt: the app imports QtCore, QtGui and QtWidgets only. Of Qt's plugins it keeps the platforms people run
  (xcb, wayland; offscreen for headless runs and the smoke test), input methods (compose keys, IBus), the
  SVG icon engine and image format (the app icon), the XDG portal theme (dark mode, portals), and Wayland's
  shell and window decorations; no Qt translations (the app installs no translator). Qt's own libraries
  stay only if a kept binary needs them (ELF ``NEEDED``, followed to the end).
- Linux system libraries (from Debian packages) are not bundled: the .deb depends on their packages instead
  (``packaging/linux/deb_depends.py`` derives the list from the bundle), so Debian's security updates reach
  them and the bundle stays small. Python's own runtime (libpython, ``lib-dynload``) stays in the bundle.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any

APP_DISTRIBUTION = "desktop-chat"
QT_BINDINGS_USED = frozenset({"QtCore", "QtGui", "QtWidgets"})

# Plugins kept, by platform: "<plugin directory>/<file name without the lib prefix and suffix>".
_LINUX_PLUGINS = frozenset(
    {
        "platforms/qxcb",
        "platforms/qwayland",
        "platforms/qoffscreen",
        "platforminputcontexts/composeplatforminputcontextplugin",
        "platforminputcontexts/ibusplatforminputcontextplugin",
        "platformthemes/qxdgdesktopportal",
        "iconengines/qsvgicon",
        "imageformats/qsvg",
    }
)
# Whole plugin directories kept on Linux: Wayland needs a shell integration (xdg-shell) and, on compositors
# without server-side decorations (GNOME), a decoration plugin, or windows have no title bar.
_LINUX_PLUGIN_DIRS = frozenset({"wayland-shell-integration", "wayland-decoration-client"})
_WINDOWS_PLUGINS = frozenset(
    {
        "platforms/qwindows",
        "platforms/qoffscreen",
        "iconengines/qsvgicon",
        "imageformats/qsvg",
        "imageformats/qico",
    }
)
_MACOS_PLUGINS = frozenset(
    {
        "platforms/qcocoa",
        "platforms/qoffscreen",
        "iconengines/qsvgicon",
        "imageformats/qsvg",
    }
)

_ELF_MAGIC = b"\x7fELF"


def kept_plugins(platform: str = sys.platform) -> tuple[frozenset[str], frozenset[str]]:
    """The plugins (``dir/name``) and whole plugin directories kept for ``platform``."""
    if platform.startswith("linux"):
        return _LINUX_PLUGINS, _LINUX_PLUGIN_DIRS
    if platform == "win32":
        return _WINDOWS_PLUGINS, frozenset()
    if platform == "darwin":
        return _MACOS_PLUGINS, frozenset()
    raise ValueError(f"no bundle policy for platform {platform!r}")


def plugin_key(dest: str) -> str | None:
    """``platforms/qxcb`` for ``PySide6/Qt/plugins/platforms/libqxcb.so`` (or ``.dll``, ``.dylib``); else None."""
    parts = PurePosixPath(dest.replace("\\", "/")).parts
    if "plugins" not in parts:
        return None
    index = parts.index("plugins")
    # PySide6/Qt/plugins/... on Linux and macOS, PySide6/plugins/... on Windows.
    if index < 1 or parts[index - 1] not in ("Qt", "PySide6") or len(parts) != index + 3:
        return None
    stem = parts[-1].split(".")[0]
    if stem.startswith("lib") and not parts[-1].endswith(".dll"):
        stem = stem[3:]  # libqxcb.so, libqcocoa.dylib; but qwindows.dll
    return f"{parts[index + 1]}/{stem}"


def keep_plugin(dest: str, platform: str = sys.platform) -> bool:
    """Whether a bundled file is a Qt plugin to keep (True also for anything that is not a Qt plugin)."""
    key = plugin_key(dest)
    if key is None:
        return True
    plugins, directories = kept_plugins(platform)
    return key in plugins or key.split("/")[0] in directories


def is_qt_translation(dest: str) -> bool:
    parts = PurePosixPath(dest.replace("\\", "/")).parts
    return "translations" in parts and parts[-1].endswith(".qm") and "PySide6" in parts


# --- Python distributions -----------------------------------------------------------------------------------
def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_distributions(root: str = APP_DISTRIBUTION) -> set[str]:
    """Canonical names of the distributions ``root`` needs at run time (extras it names included)."""
    from packaging.requirements import Requirement  # pip's and PyInstaller's own dependency

    needed: set[str] = set()
    queue: list[tuple[str, frozenset[str]]] = [(root, frozenset())]
    seen: set[tuple[str, frozenset[str]]] = set()
    while queue:
        name, extras = queue.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # an optional dependency for another platform, not installed here
        needed.add(_canonical(dist.metadata["Name"]))
        for line in dist.requires or []:
            requirement = Requirement(line)
            environments = [{"extra": extra} for extra in extras] or [{"extra": ""}]
            if requirement.marker is not None and not any(requirement.marker.evaluate(env) for env in environments):
                continue
            queue.append((_canonical(requirement.name), frozenset(requirement.extras)))
    return needed


def _top_level_names(dist: metadata.Distribution) -> set[str]:
    text = dist.read_text("top_level.txt")
    if text:
        return {line.strip() for line in text.splitlines() if line.strip()}
    names = set()
    for file in dist.files or []:
        parts = PurePosixPath(str(file)).parts
        if not parts or parts[0].endswith((".dist-info", ".egg-info", ".data")) or parts[0] in {"..", "__pycache__"}:
            continue
        first = parts[0]
        if len(parts) == 1:
            if first.endswith(".py"):
                names.add(first[:-3])
            elif first.endswith((".so", ".pyd")):
                names.add(first.split(".")[0])
        else:
            names.add(first)
    return names


def foreign_modules(root: str = APP_DISTRIBUTION) -> list[str]:
    """Top-level modules installed in this environment that only distributions ``root`` does not need provide."""
    needed = runtime_distributions(root)
    wanted: set[str] = set()
    others: set[str] = set()
    for dist in metadata.distributions():
        names = _top_level_names(dist)
        if _canonical(dist.metadata["Name"] or "") in needed:
            wanted |= names
        else:
            others |= names
    # Never exclude what the app needs, nor its own package (an editable install lists it oddly).
    wanted |= {"desktop_chat"}
    return sorted(name for name in others - wanted if name.isidentifier())


def unused_qt_bindings() -> list[str]:
    """``PySide6.X`` modules the app does not use (PyInstaller's hooks would pull some in)."""
    import PySide6

    here = Path(PySide6.__file__).parent
    modules = {path.name.split(".")[0] for path in here.iterdir() if path.name.startswith("Qt")}
    modules = {name for name in modules if name.isidentifier()}
    return sorted(f"PySide6.{name}" for name in modules - QT_BINDINGS_USED)


# --- ELF ------------------------------------------------------------------------------------------------
def is_elf(path: Path) -> bool:
    try:
        with path.open("rb") as file:
            return file.read(4) == _ELF_MAGIC
    except OSError:
        return False


def needed(path: Path) -> list[str]:
    """The ``NEEDED`` entries of an ELF file (``readelf -d``, from binutils)."""
    output = subprocess.run(["readelf", "-dW", str(path)], capture_output=True, text=True, check=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", output)


def reachable_libraries(roots: Iterable[Path], libraries: dict[str, Path]) -> set[str]:
    """Names of ``libraries`` (file name → path) that the ELF ``roots`` need, directly or through each other."""
    reached: set[str] = set()
    pending = [path for path in roots if is_elf(path)]
    while pending:
        for name in needed(pending.pop()):
            if name in libraries and name not in reached:
                reached.add(name)
                pending.append(libraries[name])
    return reached


def dpkg_owned(paths: Iterable[str]) -> set[str]:
    """Which of ``paths`` a Debian package installed (``dpkg -S``); empty without dpkg."""
    result: set[str] = set()
    for path in paths:
        candidates = {path, str(Path(path).resolve())}
        for candidate in list(candidates):
            # Merged /usr: a file under /lib may be registered under /usr/lib, and the other way round.
            if candidate.startswith("/usr/lib/"):
                candidates.add(candidate.removeprefix("/usr"))
            elif candidate.startswith("/lib/"):
                candidates.add("/usr" + candidate)
        for candidate in candidates:
            try:
                found = subprocess.run(["dpkg", "-S", candidate], capture_output=True, check=False)
            except FileNotFoundError:
                return set()
            if found.returncode == 0:
                result.add(path)
                break
    return result


def is_python_runtime(src: str) -> bool:
    """libpython and the interpreter's extension modules: bundled even though Debian ships them."""
    name = Path(src).name
    return name.startswith("libpython") or "/lib-dynload/" in src


def iter_toc(toc: Iterable[tuple[str, str, str]]) -> Iterator[tuple[str, str, str]]:
    for entry in toc:
        yield entry[0], entry[1], entry[2]


# --- the spec's steps ------------------------------------------------------------------------------------
def excludes(*, keep: Iterable[str] = ()) -> list[str]:
    """Modules the Analysis must not follow: dev tools, devstack, tests, benchmarks, unused Qt bindings."""
    # readline: a GUI app has no interactive prompt, and it would make the .deb depend on libreadline.
    names = (
        {"devstack", "tests", "bench", "chat_migrate", "tkinter", "_tkinter", "readline"}
        | set(foreign_modules())
        | set(unused_qt_bindings())
    )
    return sorted(names - set(keep))


def _trim_qt(toc: list[tuple[str, str, str]], platform: str) -> list[tuple[str, str, str]]:
    return [(dest, src, kind) for dest, src, kind in toc if keep_plugin(dest, platform) and not is_qt_translation(dest)]


def trim_analysis(analysis: Any, *, drop_system_libs: bool, platform: str = sys.platform) -> None:
    """Apply the policy to a PyInstaller ``Analysis`` (its ``binaries`` and ``datas``), in place."""
    binaries = _trim_qt(list(iter_toc(analysis.binaries)), platform)
    datas = _trim_qt(list(iter_toc(analysis.datas)), platform)
    if drop_system_libs:
        system = [
            src
            for dest, src, kind in binaries
            if kind == "BINARY"
            and src.startswith(("/lib/", "/usr/lib/", "/lib64/", "/usr/lib64/"))
            and not is_python_runtime(src)
        ]
        owned = dpkg_owned(system)
        binaries = [entry for entry in binaries if entry[1] not in owned]
    if platform.startswith("linux"):
        # Qt's own libraries stay only if something kept needs them (ELF NEEDED, followed through).
        qt_libs = {
            PurePosixPath(dest).name: Path(src)
            for dest, src, kind in binaries
            if kind == "BINARY" and PurePosixPath(dest).parent.as_posix().endswith("PySide6/Qt/lib")
        }
        roots = [
            Path(src)
            for dest, src, kind in binaries
            if kind in ("BINARY", "EXTENSION") and PurePosixPath(dest).name not in qt_libs
        ]
        wanted = reachable_libraries(roots, qt_libs)
        binaries = [
            entry
            for entry in binaries
            if not (PurePosixPath(entry[0]).name in qt_libs and PurePosixPath(entry[0]).name not in wanted)
        ]
    # PyInstaller links libraries that live in subfolders into the top folder too (in either TOC): drop the
    # links to what went.
    kept = {dest for dest, _src, kind in [*binaries, *datas] if kind != "SYMLINK"}

    def live(toc: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
        return [
            (dest, src, kind)
            for dest, src, kind in toc
            if kind != "SYMLINK" or os.path.normpath(os.path.join(os.path.dirname(dest), src)) in kept
        ]

    analysis.binaries = live(binaries)
    analysis.datas = live(datas)
