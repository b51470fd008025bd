"""``make package``: the PyInstaller bundle, then ``dist/desktop-chat_<version>_<arch>.deb`` around it.

Steps: freeze the app (``packaging/desktop-chat.spec``), run the bundle's ``--smoke-test``, lay out the
package tree (the bundle in ``/opt/desktop-chat``, ``/usr/bin/desktop-chat``, the desktop entry, AppStream
metainfo, theme icons, man page, copyright and changelog under ``/usr/share``), derive ``Depends`` from the
bundle's ELF files (``deb_depends.py``), and build the archive with ``dpkg-deb`` (owner root, no fakeroot).

A build is skipped when the .deb on disk was built from the same inputs (the app's sources, packaging,
resources, ``pyproject.toml``, the Python environment's distributions); ``--force`` rebuilds anyway. The
fingerprint of the inputs is written next to the .deb. Nothing here needs the network.

    python packaging/linux/build_deb.py [--force] [--print-path]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import hashlib
import os
import platform
import shutil
import stat
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT), str(HERE), str(HERE.parent)]

import deb_depends  # noqa: E402

from desktop_chat import APP_ID, __version__  # noqa: E402

PACKAGE = "desktop-chat"
DIST = ROOT / "dist"
BUNDLE = DIST / PACKAGE
WORK = ROOT / "build"
STAGE = WORK / "deb"
RESOURCES = ROOT / "resources"
INSTALL_DIR = Path("opt") / PACKAGE
ICON_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
# Inputs of the build: a change in any of them makes the .deb on disk stale.
FINGERPRINTED = ("desktop_chat", "packaging", "resources", "pyproject.toml")
DEFAULT_MAINTAINER = "desktop-chat developers <dev@desktop-chat.invalid>"
RECOMMENDS = "redis-server, fonts-noto-color-emoji"
DESCRIPTION = """\
desktop chat client over Supabase, fast and offline-tolerant
 desktop-chat is a chat client for the desktop over a Supabase project
 (PostgreSQL with row-level security, Auth and Realtime): recent chats,
 history, live messages, typing indicators, unread counts and desktop
 notifications.
 .
 Reads come from a local cache, so chats open at once and stay readable
 offline; with redis-server installed the cache is a private Redis server,
 else memory. Every message sent is kept in a local outbox until the server
 has it, through crashes and outages."""


def debian_version(version: str = __version__) -> str:
    """PEP 440 → Debian: pre-releases sort before the release (``0.2.0rc1`` → ``0.2.0~rc1``)."""
    from packaging.version import Version  # pip's and PyInstaller's dependency

    parsed = Version(version)
    text = parsed.base_version
    if parsed.pre is not None:
        text += f"~{parsed.pre[0]}{parsed.pre[1]}"
    if parsed.dev is not None:
        text += f"~dev{parsed.dev}"
    if parsed.post is not None:
        text += f"+post{parsed.post}"
    if parsed.local is not None:
        text += f"+{parsed.local}"
    return text


def architecture() -> str:
    return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=True).stdout.strip()


def deb_path() -> Path:
    return DIST / f"{PACKAGE}_{debian_version()}_{architecture()}.deb"


def fingerprint() -> str:
    """A hash of everything the .deb is built from."""
    digest = hashlib.sha256()
    digest.update(f"{sys.version} {platform.machine()}\n".encode())
    for dist in sorted(metadata.distributions(), key=lambda d: (d.metadata["Name"] or "").lower()):
        digest.update(f"{dist.metadata['Name']}=={dist.version}\n".encode())
    for name in FINGERPRINTED:
        path = ROOT / name
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            if "__pycache__" in file.parts:
                continue
            digest.update(str(file.relative_to(ROOT)).encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


def is_current(deb: Path, inputs: str | None = None) -> bool:
    """Whether ``deb`` was built from the inputs as they are now."""
    stamp = deb.with_name(deb.name + ".fingerprint")
    return deb.is_file() and stamp.is_file() and stamp.read_text().strip() == (inputs or fingerprint())


def freeze() -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "PyInstaller",
            "--noconfirm",
            "--log-level=WARN",
            "--distpath",
            str(DIST),
            "--workpath",
            str(WORK / "pyinstaller"),
            str(ROOT / "packaging" / "desktop-chat.spec"),
        ],
        cwd=ROOT,
        check=True,
    )


def drop_build_host_runpaths(tree: Path) -> list[str]:
    """Remove library search paths that point at the build machine (a pyenv Python's ``RUNPATH``).

    ``$ORIGIN``-relative entries (Qt's, inside the bundle) stay; an absolute one would make the installed
    app look for libraries in a directory of the build machine. Needs ``patchelf`` (Debian package).
    """
    changed = []
    for path in deb_depends.elf_files(tree):
        current = subprocess.run(["patchelf", "--print-rpath", str(path)], capture_output=True, text=True, check=False)
        if current.returncode != 0 or not current.stdout.strip():
            continue
        entries = current.stdout.strip().split(":")
        kept = [entry for entry in entries if entry.startswith("$ORIGIN")]
        if kept == entries:
            continue
        if kept:
            subprocess.run(["patchelf", "--set-rpath", ":".join(kept), str(path)], check=True)
        else:
            subprocess.run(["patchelf", "--remove-rpath", str(path)], check=True)
        changed.append(str(path.relative_to(tree)))
    return changed


def smoke_test(executable: Path) -> None:
    """The frozen app starts and paints its first window (offscreen, in a throwaway home)."""
    with tempfile.TemporaryDirectory() as home:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": home,
            "QT_QPA_PLATFORM": "offscreen",
            "XDG_RUNTIME_DIR": home,
        }
        result = subprocess.run(
            [str(executable), "--smoke-test"],
            env=env,
            cwd=home,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    if result.returncode != 0:
        raise SystemExit(f"the bundle's --smoke-test failed ({result.returncode}):\n{result.stderr[-4000:]}")


def _copy_tree(source: Path, target: Path) -> None:
    shutil.copytree(source, target, symlinks=True)


def _normalise_modes(tree: Path) -> None:
    """Directories 0755, programs 0755, everything else (shared libraries included) 0644; all readable."""
    for path in [tree, *tree.rglob("*")]:
        if path.is_symlink():
            continue
        if path.is_dir():
            path.chmod(0o755)
        elif path.suffix == ".so" or ".so." in path.name or not (path.stat().st_mode & stat.S_IXUSR):
            path.chmod(0o644)
        else:
            path.chmod(0o755)


def _write(path: Path, data: bytes | str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    path.chmod(mode)


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=9, mtime=0)  # no timestamp: reproducible, as lintian asks


def _changelog(version: str, maintainer: str) -> str:
    when = dt.datetime.now(dt.UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
    return (
        f"{PACKAGE} ({version}) unstable; urgency=medium\n\n"
        f"  * Release {version}, built from the desktop-chat sources with PyInstaller.\n\n"
        f" -- {maintainer}  {when}\n"
    )


def _copyright() -> str:
    """resources/copyright, then the bundled Python distributions with their declared licences."""
    sys.path.insert(0, str(ROOT / "packaging"))
    import bundle_policy

    lines = []
    for name in sorted(bundle_policy.runtime_distributions()):
        dist = metadata.distribution(name)
        licence = dist.metadata.get("License-Expression") or dist.metadata.get("License") or ""
        licence = licence.strip().splitlines()[0] if licence.strip() else ""
        if not licence or len(licence) > 60:
            classifiers = [
                c.split("::")[-1].strip()
                for c in dist.metadata.get_all("Classifier") or []
                if c.startswith("License ::")
            ]
            licence = ", ".join(classifiers) or "see the distribution's metadata"
        lines.append(f" {dist.metadata['Name']} {dist.version}: {licence}")
    listing = "\n".join(lines)
    return (RESOURCES / "copyright").read_text() + (
        "\nFiles: opt/desktop-chat/_internal/*\n"
        "Copyright: the authors of each bundled Python distribution\n"
        "License: other\n"
        " The Python distributions bundled, and the licences their metadata declare:\n"
        f"{listing}\n"
    )


def installed_size(tree: Path) -> int:
    """KiB, counted as dpkg-gencontrol does: each file rounded up to 1 KiB, 1 KiB per link or directory."""
    total = 0
    for path in tree.rglob("*"):
        if "DEBIAN" in path.relative_to(tree).parts:
            continue
        if path.is_symlink() or path.is_dir():
            total += 1
        else:
            total += -(-path.stat().st_size // 1024)
    return total


def stage(version: str, maintainer: str) -> Path:
    """The package's file tree in build/deb/, with DEBIAN/control."""
    if STAGE.exists():
        shutil.rmtree(STAGE)
    STAGE.mkdir(parents=True)
    _copy_tree(BUNDLE, STAGE / INSTALL_DIR)
    _normalise_modes(STAGE / INSTALL_DIR)
    (STAGE / "usr" / "bin").mkdir(parents=True)
    # An absolute link (across top-level directories, as policy asks): the bootloader follows it to find
    # its _internal folder, so the command works from any directory.
    (STAGE / "usr" / "bin" / PACKAGE).symlink_to(Path("/") / INSTALL_DIR / PACKAGE)
    share = STAGE / "usr" / "share"
    _write(share / "applications" / f"{APP_ID}.desktop", (RESOURCES / f"{APP_ID}.desktop").read_bytes())
    _write(share / "metainfo" / f"{APP_ID}.metainfo.xml", (RESOURCES / f"{APP_ID}.metainfo.xml").read_bytes())
    icons = share / "icons" / "hicolor"
    for size in ICON_SIZES:
        source = RESOURCES / "icons" / f"{PACKAGE}-{size}.png"
        _write(icons / f"{size}x{size}" / "apps" / f"{APP_ID}.png", source.read_bytes())
    _write(icons / "scalable" / "apps" / f"{APP_ID}.svg", (RESOURCES / f"{PACKAGE}.svg").read_bytes())
    _write(share / "man" / "man1" / f"{PACKAGE}.1.gz", _gzip((HERE / f"{PACKAGE}.1").read_bytes()))
    doc = share / "doc" / PACKAGE
    _write(doc / "copyright", _copyright())
    _write(doc / "changelog.gz", _gzip(_changelog(version, maintainer).encode()))
    _write(share / "lintian" / "overrides" / PACKAGE, (HERE / "lintian-overrides").read_bytes())
    for directory in [STAGE, *(p for p in STAGE.rglob("*") if p.is_dir() and not p.is_symlink())]:
        directory.chmod(0o755)
    control = {
        "Package": PACKAGE,
        "Version": version,
        "Architecture": architecture(),
        "Maintainer": maintainer,
        "Installed-Size": str(installed_size(STAGE)),
        "Depends": deb_depends.derive(STAGE),
        "Recommends": RECOMMENDS,
        "Section": "net",
        "Priority": "optional",
        "Description": DESCRIPTION,
    }
    text = "".join(f"{key}: {value}\n" for key, value in control.items())
    _write(STAGE / "DEBIAN" / "control", text)
    (STAGE / "DEBIAN").chmod(0o755)
    return STAGE


def build(*, force: bool = False) -> Path:
    """The .deb, rebuilt only when its inputs changed (or ``force``); returns its path."""
    deb = deb_path()
    inputs = fingerprint()  # before building: an edit made meanwhile must not pass for built
    if not force and is_current(deb, inputs):
        print(f"{deb.relative_to(ROOT)} is up to date (same inputs); --force rebuilds it")
        return deb
    print("Freezing the app with PyInstaller ...", flush=True)
    freeze()
    changed = drop_build_host_runpaths(BUNDLE)
    if changed:
        print(f"Removed the build machine's library paths from {len(changed)} files", flush=True)
    print("Running the bundle's --smoke-test ...", flush=True)
    smoke_test(BUNDLE / PACKAGE)
    maintainer = os.environ.get("DEB_MAINTAINER", DEFAULT_MAINTAINER)
    print("Laying out the package and deriving Depends ...", flush=True)
    tree = stage(debian_version(), maintainer)
    for old in DIST.glob(f"{PACKAGE}_*.deb*"):
        old.unlink()
    # xz at level 1: 25 s here against 90 s at the default level, for a 10 % larger download (lintian in
    # Debian 12 does not accept zstd members).
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Zxz", "-z1", "--build", str(tree), str(deb)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    deb.with_name(deb.name + ".fingerprint").write_text(inputs + "\n")
    print(f"built {deb.relative_to(ROOT)} ({deb.stat().st_size / 2**20:.1f} MiB)")
    return deb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--force", action="store_true", help="rebuild even if the .deb on disk is current")
    parser.add_argument("--print-path", action="store_true", help="print the .deb's path (nothing is built)")
    args = parser.parse_args(argv)
    if args.print_path:
        print(deb_path())
        return 0
    build(force=args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
