; Inno Setup 6 script: a per-user Windows installer around the PyInstaller bundle in dist\desktop-chat\.
; Built by .github/workflows/release.yml on windows-latest (not runnable on the Linux build machine):
;   pyinstaller --noconfirm --distpath dist --workpath build packaging\desktop-chat.spec
;   iscc /DAppVersion=<version> packaging\windows\desktop-chat.iss
; Output: dist\desktop-chat-<version>-setup.exe. No administrator rights are asked for: the app goes to
; %LOCALAPPDATA%\Programs\desktop-chat, with a Start menu entry and an uninstaller (Settings > Apps).

#ifndef AppVersion
  #error Pass the version: iscc /DAppVersion=0.1.0 packaging\windows\desktop-chat.iss
#endif
#define AppName "desktop-chat"
#define AppExe "desktop-chat.exe"
; The same id as the Linux desktop entry and the macOS bundle (desktop_chat.APP_ID); Windows uses it to
; group the app's windows and notifications on the taskbar.
#define AppUserModelId "org.desktopchat.DesktopChat"

[Setup]
; Never change AppId: Windows finds the installed copy (to upgrade or uninstall it) by this GUID.
AppId={{E673ADA8-D36F-4FAC-8796-771AA23B777B}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher=desktop-chat developers
VersionInfoVersion={#AppVersion}
; Per-user: no UAC prompt; {autopf} is %LOCALAPPDATA%\Programs when running without admin rights.
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
DefaultDirName={autopf}\{#AppName}
DisableProgramGroupPage=yes
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0
OutputDir=..\..\dist
OutputBaseFilename={#AppName}-{#AppVersion}-setup
SetupIconFile=..\..\resources\icons\desktop-chat.ico
UninstallDisplayIcon={app}\{#AppExe}
UninstallDisplayName={#AppName}
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
; A running copy holds its files open: ask to close it before upgrading or uninstalling.
CloseApplications=yes
RestartApplications=no

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
Source: "..\..\dist\desktop-chat\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\{#AppName}"; Filename: "{app}\{#AppExe}"; AppUserModelID: "{#AppUserModelId}"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExe}"; AppUserModelID: "{#AppUserModelId}"; Tasks: desktopicon

[Run]
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent

[UninstallDelete]
; Only what the installer put in {app}; the user's settings, outbox and logs (in %APPDATA% and
; %LOCALAPPDATA%\desktop-chat) stay, as they would after an upgrade.
Type: filesandordirs; Name: "{app}\_internal"
