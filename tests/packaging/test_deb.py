"""The .deb that ``make package`` builds, inspected from the outside: control fields, files, launcher,
desktop entry, metainfo, and that no development code rides along.

The package is built here when the one in ``dist/`` is missing or stale (``packaging/linux/build_deb.py``
reuses a current one, so ``.ci/run``'s later ``make package-check`` does not build it again). Set
``DESKTOP_CHAT_SKIP_PACKAGE_BUILD=1`` to skip these tests on a machine that cannot run PyInstaller; CI never
sets it. Installing with apt and running as a normal user is ``make package-check`` (root only).
"""

from __future__ import annotations

import configparser
import importlib.util
import os
import stat
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path, PurePosixPath
from types import ModuleType

import pytest
from PySide6.QtGui import QImage

from desktop_chat import APP_ID, __version__
from devstack.config import REPO_ROOT

SKIP_ENV = "DESKTOP_CHAT_SKIP_PACKAGE_BUILD"
INSTALL_DIR = "opt/desktop-chat"
# Nothing of these may be inside: the local stack, tests, benchmarks, migration tooling, dev tools.
FORBIDDEN = ("devstack", "tests", "bench", "chat_migrate", "pytest", "_pytest", "hypothesis", "mypy", "ruff")
FORBIDDEN += ("asyncpg", "uvicorn", "starlette", "uvloop", "bcrypt", "PyInstaller")

# Building from scratch freezes the app and packs ~120 MB; on a busy two-core machine that takes minutes.
pytestmark = pytest.mark.timeout(1500)


def _load(name: str, path: Path) -> ModuleType:
    for folder in (str(path.parent), str(REPO_ROOT / "packaging")):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_deb = _load("build_deb", REPO_ROOT / "packaging" / "linux" / "build_deb.py")
deb_depends = _load("deb_depends", REPO_ROOT / "packaging" / "linux" / "deb_depends.py")


@pytest.fixture(scope="module")
def deb() -> Path:
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"{SKIP_ENV}=1 turns the PyInstaller build off")
    path: Path = build_deb.build()
    assert build_deb.is_current(path)
    return path


@pytest.fixture(scope="module")
def tree(deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("deb")
    subprocess.run(["dpkg-deb", "-x", str(deb), str(target)], check=True)
    return target


def field(deb: Path, name: str) -> str:
    return subprocess.run(
        ["dpkg-deb", "--field", str(deb), name], capture_output=True, text=True, check=True
    ).stdout.strip()


def members(deb: Path) -> list[tarfile.TarInfo]:
    data = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True).stdout
    import io

    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        return archive.getmembers()


def test_control_fields(deb: Path, tree: Path) -> None:
    assert deb.name == f"desktop-chat_{build_deb.debian_version()}_{build_deb.architecture()}.deb"
    assert field(deb, "Package") == "desktop-chat"
    assert field(deb, "Version") == build_deb.debian_version(__version__)
    assert field(deb, "Architecture") == build_deb.architecture()
    assert "<" in field(deb, "Maintainer") and field(deb, "Maintainer").endswith(">")
    assert field(deb, "Section") == "net"
    assert field(deb, "Priority") == "optional"
    recommends = {item.strip() for item in field(deb, "Recommends").split(",")}
    assert recommends == {"redis-server", "fonts-noto-color-emoji"}
    assert int(field(deb, "Installed-Size")) == build_deb.installed_size(tree)
    assert field(deb, "Description").startswith("desktop chat client over Supabase")


def test_the_version_follows_the_package_version() -> None:
    assert build_deb.debian_version("0.1.0") == "0.1.0"
    assert build_deb.debian_version("0.2.0rc1") == "0.2.0~rc1"
    assert build_deb.debian_version("1.0.0.dev3") == "1.0.0~dev3"
    assert build_deb.debian_version("1.0.0.post2") == "1.0.0+post2"
    # A pre-release sorts before its release, as pip sorts it.
    older = subprocess.run(["dpkg", "--compare-versions", "0.2.0~rc1", "lt", "0.2.0"], check=False)
    assert older.returncode == 0


def test_depends_is_exactly_what_the_files_need(deb: Path) -> None:
    assert deb_depends.check(deb) == []
    depends = {item.split()[0] for item in field(deb, "Depends").split(",")}
    # The xcb platform plugin's libraries (the ones a bare Debian lacks) and the C library are among them.
    assert {"libc6", "libxcb-cursor0", "libxkbcommon-x11-0", "libfontconfig1", "libdbus-1-3"} <= depends


def test_files_are_in_the_standard_places(deb: Path, tree: Path) -> None:
    entries = members(deb)
    paths = {PurePosixPath(entry.name).relative_to(".").as_posix() for entry in entries} - {"."}
    assert all(path.startswith(("opt/desktop-chat", "usr/")) or path in ("opt", "usr") for path in paths), sorted(
        path for path in paths if not path.startswith(("opt/desktop-chat", "usr/"))
    )[:5]
    expected = {
        f"{INSTALL_DIR}/desktop-chat",
        "usr/bin/desktop-chat",
        f"usr/share/applications/{APP_ID}.desktop",
        f"usr/share/metainfo/{APP_ID}.metainfo.xml",
        f"usr/share/icons/hicolor/scalable/apps/{APP_ID}.svg",
        "usr/share/man/man1/desktop-chat.1.gz",
        "usr/share/doc/desktop-chat/copyright",
        "usr/share/doc/desktop-chat/changelog.gz",
        "usr/share/lintian/overrides/desktop-chat",
    }
    assert expected <= paths, sorted(expected - paths)
    for size in build_deb.ICON_SIZES:
        icon = tree / f"usr/share/icons/hicolor/{size}x{size}/apps/{APP_ID}.png"
        image = QImage(str(icon))
        assert (image.width(), image.height()) == (size, size), icon
    for entry in entries:
        assert (entry.uname, entry.gname) == ("root", "root"), entry.name
        if entry.issym():
            continue  # a link's own mode is always 0777 and means nothing
        assert not entry.mode & stat.S_IWOTH, f"{entry.name} is world-writable"
        if entry.isdir():
            assert entry.mode & 0o755 == 0o755, f"{entry.name} is not enterable by everyone"
        elif entry.isfile():
            assert entry.mode & stat.S_IROTH, f"{entry.name} is not readable by everyone"
    program = tree / INSTALL_DIR / "desktop-chat"
    assert program.stat().st_mode & 0o755 == 0o755
    assert program.read_bytes()[:4] == b"\x7fELF"


def test_the_launcher_points_at_the_bundle_and_runs_from_any_directory(tree: Path, tmp_path: Path) -> None:
    launcher = tree / "usr/bin/desktop-chat"
    assert launcher.is_symlink()
    assert os.readlink(launcher) == f"/{INSTALL_DIR}/desktop-chat"
    # The extracted bundle stands in for the installed one (same files, another prefix).
    program = tree / INSTALL_DIR / "desktop-chat"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "QT_QPA_PLATFORM": "offscreen"}
    version = subprocess.run(
        [str(program), "--version"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"desktop-chat {__version__}"
    smoke = subprocess.run(
        [str(program), "--smoke-test"], cwd="/", env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert smoke.returncode == 0, smoke.stderr[-3000:]


def test_the_desktop_entry_is_valid_and_matches_the_window(tree: Path) -> None:
    path = tree / f"usr/share/applications/{APP_ID}.desktop"
    result = subprocess.run(["desktop-file-validate", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    entry.read(path)
    desktop = entry["Desktop Entry"]
    assert desktop["Exec"].split()[0] == "desktop-chat"
    assert (tree / "usr/bin" / desktop["Exec"].split()[0]).is_symlink()
    assert desktop["Icon"] == APP_ID
    # Qt names an X11 window's class after the application name app.py sets ("desktop-chat"); the shell
    # matches it to this entry (checked with xprop on the installed app: packaging/README.md).
    assert desktop["StartupWMClass"] == "desktop-chat"


def test_the_metainfo_is_valid_and_describes_this_release(tree: Path) -> None:
    path = tree / f"usr/share/metainfo/{APP_ID}.metainfo.xml"
    result = subprocess.run(
        ["appstreamcli", "validate", "--no-net", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    root = ET.parse(path).getroot()  # noqa: S314 (our own file, from our own package)
    assert root.findtext("id") == APP_ID
    assert root.findtext("launchable") == f"{APP_ID}.desktop"
    releases = [release.get("version") for release in root.iter("release")]
    assert releases and releases[0] == __version__, "add a <release> for the new version to the metainfo"


def test_no_development_code_is_inside(tree: Path) -> None:
    from PyInstaller.archive.readers import CArchiveReader

    bundle = tree / INSTALL_DIR
    on_disk = {part for path in bundle.rglob("*") for part in path.relative_to(bundle).parts}
    found = {part for part in on_disk if part.split(".")[0] in FORBIDDEN}
    assert not found, sorted(found)
    archive = CArchiveReader(str(bundle / "desktop-chat"))
    modules = set(archive.open_embedded_archive("PYZ.pyz").toc)
    assert "desktop_chat.app" in modules  # the reader works: the app itself is there
    forbidden = sorted(name for name in modules if name.split(".")[0] in FORBIDDEN)
    assert not forbidden, forbidden[:10]


def test_the_plugin_policy_reads_every_platform_layout() -> None:
    bundle_policy = _load("bundle_policy", REPO_ROOT / "packaging" / "bundle_policy.py")
    keep = bundle_policy.keep_plugin
    assert keep("PySide6/Qt/plugins/platforms/libqxcb.so", "linux")
    assert not keep("PySide6/Qt/plugins/platforms/libqeglfs.so", "linux")
    assert keep("PySide6/Qt/plugins/wayland-shell-integration/libxdg-shell.so", "linux")
    assert keep("PySide6\\plugins\\platforms\\qwindows.dll", "win32")
    assert not keep("PySide6\\plugins\\imageformats\\qjpeg.dll", "win32")
    assert keep("PySide6/Qt/plugins/platforms/libqcocoa.dylib", "darwin")
    assert not keep("PySide6/Qt/plugins/platformthemes/libqgtk3.so", "linux")
    assert keep("PySide6/Qt/lib/libQt6Core.so.6", "linux")  # not a plugin: not this rule's business
