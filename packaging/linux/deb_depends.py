"""The .deb's ``Depends``, derived from the bundle's ELF files rather than written by hand.

Every ELF file in the tree (executables, shared libraries, Python extension modules, Qt plugins) names the
libraries it needs (``NEEDED``, read with ``readelf -d``). Those the tree ships itself are dropped; each
other one is found on this machine (``ldconfig -p``), mapped to the Debian package that installed it
(``dpkg -S``), and given that package's minimum version from its ``shlibs`` file, as ``dpkg-shlibdeps``
would. The build writes the result into ``DEBIAN/control``; ``--check`` compares a built .deb's field with
a fresh derivation from the .deb's own files, so the field cannot drift from what is inside.

    python packaging/linux/deb_depends.py TREE          # print the Depends value for an unpacked tree
    python packaging/linux/deb_depends.py --check DEB   # exit 1 if DEB's Depends is not what its files need
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

_ELF_MAGIC = b"\x7fELF"


class DependsError(RuntimeError):
    """A needed library that no installed Debian package provides."""


def elf_files(tree: Path) -> list[Path]:
    found = []
    for path in sorted(tree.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        with path.open("rb") as file:
            if file.read(4) == _ELF_MAGIC:
                found.append(path)
    return found


def needed(path: Path) -> list[str]:
    output = subprocess.run(["readelf", "-dW", str(path)], capture_output=True, text=True, check=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", output)


def external_sonames(tree: Path) -> dict[str, list[str]]:
    """Libraries needed by the tree's ELF files and not shipped in it: soname → the files that need it."""
    shipped = {path.name for path in tree.rglob("*") if path.is_file() or path.is_symlink()}
    wanted: dict[str, list[str]] = {}
    for path in elf_files(tree):
        for soname in needed(path):
            if soname not in shipped:
                wanted.setdefault(soname, []).append(str(path.relative_to(tree)))
    return wanted


@functools.cache
def _ldconfig() -> dict[str, str]:
    """soname → path of this machine's 64-bit libraries, from the linker cache."""
    output = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=True).stdout
    found: dict[str, str] = {}
    for match in re.finditer(r"^\s*(\S+) \(([^)]*)\) => (\S+)$", output, re.MULTILINE):
        soname, flags, path = match.groups()
        if "x86-64" in flags or "64bit" in flags or os.uname().machine not in ("x86_64",):
            found.setdefault(soname, path)
    return found


def owning_package(path: str) -> str:
    """The Debian package that installed ``path`` (merged /usr: tried as /lib and as /usr/lib)."""
    candidates = [path, os.path.realpath(path)]
    for candidate in list(candidates):
        if candidate.startswith("/usr/lib/"):
            candidates.append(candidate.removeprefix("/usr"))
        elif candidate.startswith(("/lib/", "/lib64/")):
            candidates.append("/usr" + candidate)
    for candidate in candidates:
        result = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True, check=False)
        if result.returncode == 0:
            first = result.stdout.splitlines()[0]
            return first.split(":")[0].split(",")[0].strip()
    raise DependsError(f"no installed Debian package provides {path}")


def _shlibs_name(soname: str) -> tuple[str, str]:
    """``libX11.so.6`` → (``libX11``, ``6``); ``libfoo-1.0.so`` → (``libfoo-1.0``, ``""``)."""
    match = re.fullmatch(r"(.+)\.so\.(.+)", soname)
    if match:
        return match.group(1), match.group(2)
    match = re.fullmatch(r"(.+)-([0-9.]+)\.so", soname)
    if match:
        return match.group(1), match.group(2)
    return soname.removesuffix(".so"), ""


def shlibs_dependency(package: str, soname: str) -> str:
    """The dependency the package's ``shlibs`` file declares for ``soname`` (the bare package without one)."""
    result = subprocess.run(
        ["dpkg-query", "--control-path", package, "shlibs"], capture_output=True, text=True, check=False
    )
    name, version = _shlibs_name(soname)
    for control in result.stdout.split():
        for line in Path(control).read_text().splitlines():
            tokens = line.split()
            if not tokens or tokens[0].startswith("#"):
                continue
            if tokens[0].endswith(":"):  # a package type: "udeb:" lines are for the installer, not for us
                if tokens[0] == "udeb:":
                    continue
                tokens = tokens[1:]
            if len(tokens) >= 3 and tokens[0] == name and tokens[1] == version:
                return " ".join(tokens[2:])
    return package


def _parse(dependency: str) -> tuple[str, str | None]:
    match = re.fullmatch(r"(\S+?)(?::\S+)?(?:\s*\(>=\s*([^)]+)\))?", dependency.strip())
    if not match:
        raise DependsError(f"cannot read the dependency {dependency!r}")
    return match.group(1), match.group(2)


def _newer(left: str, right: str) -> bool:
    return subprocess.run(["dpkg", "--compare-versions", left, "gt", right], check=False).returncode == 0


def merge(dependencies: Iterable[str]) -> str:
    """One entry per package, each with the highest minimum version asked for, sorted by name."""
    best: dict[str, str | None] = {}
    alternatives: set[str] = set()
    for dependency in dependencies:
        for item in (part.strip() for part in dependency.split(",")):
            if "|" in item:
                alternatives.add(item)
                continue
            package, version = _parse(item)
            current = best.get(package)
            if package not in best or (version and (current is None or _newer(version, current))):
                best[package] = version
    entries = [f"{name} (>= {version})" if version else name for name, version in best.items()]
    return ", ".join(sorted([*entries, *alternatives]))


def derive(tree: Path) -> str:
    """The ``Depends`` value for the unpacked package (or bundle) at ``tree``."""
    cache = _ldconfig()
    dependencies = []
    missing = []
    for soname, users in sorted(external_sonames(tree).items()):
        path = cache.get(soname)
        if path is None:
            missing.append(f"{soname} (needed by {users[0]})")
            continue
        dependencies.append(shlibs_dependency(owning_package(path), soname))
    if missing:
        raise DependsError(
            "these libraries are needed but not installed on this machine, so their packages are unknown: "
            + "; ".join(missing)
        )
    return merge(dependencies)


def control_field(deb: Path, field: str) -> str:
    return subprocess.run(
        ["dpkg-deb", "--field", str(deb), field], capture_output=True, text=True, check=True
    ).stdout.strip()


def check(deb: Path) -> list[str]:
    """Differences between ``deb``'s ``Depends`` and what its files need (empty when they agree)."""
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run(["dpkg-deb", "-x", str(deb), scratch], check=True)
        expected = {item.strip() for item in derive(Path(scratch)).split(",")}
    actual = {item.strip() for item in control_field(deb, "Depends").split(",") if item.strip()}
    return [f"missing: {item}" for item in sorted(expected - actual)] + [
        f"not needed: {item}" for item in sorted(actual - expected)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", type=Path, help="an unpacked tree, or a .deb with --check")
    parser.add_argument("--check", action="store_true", help="compare a .deb's Depends with its files' needs")
    args = parser.parse_args(argv)
    try:
        if args.check:
            problems = check(args.path)
            for problem in problems:
                print(problem)
            return 1 if problems else 0
        print(derive(args.path))
    except DependsError as error:
        print(f"deb_depends: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
