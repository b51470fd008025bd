#!/usr/bin/env bash
# macOS: dist/desktop-chat.app from the same PyInstaller spec, checked with its --smoke-test, then a
# drag-to-Applications disk image dist/desktop-chat-<version>-macos-<arch>.dmg.
# Runs on a Mac (the release workflow's macos-latest runner), not on the Linux build machine:
#   python -m pip install '.[package]' && packaging/macos/build-dmg.sh
# Signing: ad hoc unless MACOS_SIGN_IDENTITY names a "Developer ID Application" certificate in the keychain;
# notarisation (xcrun notarytool) then needs an Apple account and is not part of this recipe.
set -euo pipefail
cd "$(dirname "$0")/../.."

python="${PYTHON:-python3}"
version="$("$python" -c 'import desktop_chat; print(desktop_chat.__version__)')"
arch="$(uname -m)"
app="dist/desktop-chat.app"
dmg="dist/desktop-chat-${version}-macos-${arch}.dmg"

"$python" -m PyInstaller --noconfirm --distpath dist --workpath build/pyinstaller packaging/desktop-chat.spec
[ -d "$app" ] || { echo "PyInstaller did not make $app" >&2; exit 1; }

QT_QPA_PLATFORM=offscreen "$app/Contents/MacOS/desktop-chat" --smoke-test
"$app/Contents/MacOS/desktop-chat" --version

if [ -n "${MACOS_SIGN_IDENTITY:-}" ]; then
  # The hardened runtime notarisation asks for; cffi (cryptography) needs writable-executable memory.
  codesign --force --deep --options runtime --timestamp --entitlements packaging/macos/entitlements.plist \
    --sign "$MACOS_SIGN_IDENTITY" "$app"
else
  codesign --force --deep --sign - "$app"  # ad hoc: runs on the machine it was built on, Gatekeeper asks elsewhere
fi
codesign --verify --deep --strict "$app"

staging="$(mktemp -d)"
trap 'rm -rf "$staging"' EXIT
cp -R "$app" "$staging/"
ln -s /Applications "$staging/Applications"
rm -f "$dmg"
hdiutil create -volname "desktop-chat" -srcfolder "$staging" -ov -format UDZO "$dmg"
hdiutil verify "$dmg"
echo "built $dmg ($(du -h "$dmg" | cut -f1))"
