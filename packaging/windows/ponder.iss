; Inno Setup script: PonderSetup.exe from the PyInstaller folder. Called by packaging/build.py:
;   iscc /DAppVersion=0.1.0 /DSourceDir=...\dist\Ponder /O...\dist packaging\windows\ponder.iss
#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#ifndef SourceDir
  #define SourceDir "..\..\dist\Ponder"
#endif

[Setup]
AppId={{6C1E3A52-5B7A-4C8E-9D0F-2F1E7B4C9A10}
AppName=Ponder
AppVersion={#AppVersion}
AppPublisher=Ponder
DefaultDirName={autopf}\Ponder
DefaultGroupName=Ponder
DisableProgramGroupPage=yes
OutputBaseFilename=PonderSetup
Compression=lzma2/max
SolidCompression=yes
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
PrivilegesRequiredOverridesAllowed=dialog
UninstallDisplayIcon={app}\Ponder.exe
WizardStyle=modern

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
Source: "{#SourceDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\Ponder"; Filename: "{app}\Ponder.exe"
Name: "{group}\Uninstall Ponder"; Filename: "{uninstallexe}"
Name: "{autodesktop}\Ponder"; Filename: "{app}\Ponder.exe"; Tasks: desktopicon

[Run]
Filename: "{app}\Ponder.exe"; Description: "{cm:LaunchProgram,Ponder}"; Flags: nowait postinstall skipifsilent
