#!/usr/bin/env bash
# make package-check (as root, on Debian): the .deb as a person gets it. lintian without errors; apt installs
# it with its dependencies; as a normal user, from another directory, `desktop-chat --version` and
# `--smoke-test` work and write nothing under /opt; the installed desktop entry and metainfo validate;
# `apt-get purge` leaves nothing under /opt/desktop-chat nor in /usr/share/applications.
#   packaging/linux/install_check.sh dist/desktop-chat_<version>_<arch>.deb EXPECTED_VERSION_LINE
set -euo pipefail

deb="$(realpath "$1")"
expected_version="$2"
app_id="$(dpkg-deb --fsys-tarfile "$deb" | tar -t | sed -n 's|^\./usr/share/applications/\(.*\)\.desktop$|\1|p')"
user=desktop-chat-check
step() { printf '== %s\n' "$*"; }
fail() { printf 'package-check: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || fail "run as root (it installs and purges the package)"
[ -n "$app_id" ] || fail "$deb has no desktop entry"

step "lintian"
lintian --fail-on error "$deb" 2>&1 | tee /tmp/desktop-chat-lintian.txt
printf 'lintian: %s errors, %s warnings\n' "$(grep -c '^E:' /tmp/desktop-chat-lintian.txt || true)" \
  "$(grep -c '^W:' /tmp/desktop-chat-lintian.txt || true)"

export DEBIAN_FRONTEND=noninteractive
if dpkg-query -W desktop-chat >/dev/null 2>&1; then apt-get purge -y -q desktop-chat >/dev/null; fi
applications_before="$(ls /usr/share/applications 2>/dev/null | grep -v '^mimeinfo.cache$' || true)"

step "apt-get install $deb"
apt-get install -y -q --no-install-recommends "$deb"
[ -x /usr/bin/desktop-chat ] || fail "/usr/bin/desktop-chat is missing"
desktop-file-validate "/usr/share/applications/$app_id.desktop"
appstreamcli validate --no-net "/usr/share/metainfo/$app_id.metainfo.xml"
# Every installed file readable and every directory enterable by everyone (no root-only surprises).
unreadable="$(dpkg -L desktop-chat | while read -r path; do
  [ -e "$path" ] || continue
  if [ -d "$path" ]; then perm=5; else perm=4; fi
  [ $(( 0$(stat -c %a "$path" | tail -c 2) & perm )) -eq "$perm" ] || echo "$path"
done)"
[ -z "$unreadable" ] || fail "not readable by other users: $unreadable"

step "run as a normal user"
id "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/sh "$user"
home="$(getent passwd "$user" | cut -d: -f6)"
marker="$(mktemp)"
sleep 1  # file times have a resolution: anything written after this is newer than the marker
as_user() { (cd /tmp && runuser -u "$user" -- env -i HOME="$home" PATH=/usr/bin:/bin QT_QPA_PLATFORM=offscreen "$@"); }
version="$(as_user desktop-chat --version)"
[ "$version" = "$expected_version" ] || fail "--version printed '$version', expected '$expected_version'"
echo "$version"
as_user desktop-chat --smoke-test || fail "--smoke-test failed"
written="$(find /opt/desktop-chat -newer "$marker" | head -5)"
[ -z "$written" ] || fail "the app wrote under /opt at run time: $written"
rm -f "$marker"
echo "smoke test passed; nothing written under /opt/desktop-chat"

step "apt-get purge desktop-chat"
apt-get purge -y -q desktop-chat
userdel --remove "$user" 2>/dev/null || true
[ ! -e /opt/desktop-chat ] || fail "/opt/desktop-chat is left after purge: $(find /opt/desktop-chat | head)"
[ ! -e /usr/bin/desktop-chat ] || fail "/usr/bin/desktop-chat is left after purge"
applications_after="$(ls /usr/share/applications 2>/dev/null | grep -v '^mimeinfo.cache$' || true)"
[ "$applications_before" = "$applications_after" ] || fail "/usr/share/applications changed: $(diff <(echo "$applications_before") <(echo "$applications_after"))"
echo "package-check: installed, ran as $user, purged cleanly"
