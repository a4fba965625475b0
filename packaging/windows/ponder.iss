; Inno Setup script: PonderSetup.exe from the PyInstaller folder. Called by packaging/build.py:
;   iscc /DAppVersion=0.1.0 /DSourceDir=...\dist\Ponder /O...\dist packaging\windows\ponder.iss
; With a code-signing certificate configured, build.py adds /DSign and /Sponder=... (signtool's command line):
; the installer and its uninstaller are then signed.
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
VersionInfoVersion={#AppVersion}
VersionInfoProductName=Ponder
VersionInfoDescription=Ponder installer
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
; The optional PATH entry takes effect in new terminals without a restart.
ChangesEnvironment=yes
#ifdef Sign
SignTool=ponder
SignedUninstaller=yes
#endif

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked
Name: "addtopath"; Description: "Add ponder-cli to PATH (use Ponder from a terminal)"; GroupDescription: "Command line:"; Flags: unchecked

[InstallDelete]
; An upgrade replaces the bundle's libraries as a whole: a DLL an older version shipped and this one does not
; would otherwise stay in _internal and could be loaded instead of the new one.
Type: filesandordirs; Name: "{app}\_internal"

[Files]
Source: "{#SourceDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\Ponder"; Filename: "{app}\Ponder.exe"
Name: "{group}\Uninstall Ponder"; Filename: "{uninstallexe}"
Name: "{autodesktop}\Ponder"; Filename: "{app}\Ponder.exe"; Tasks: desktopicon

[Run]
Filename: "{app}\Ponder.exe"; Description: "{cm:LaunchProgram,Ponder}"; Flags: nowait postinstall skipifsilent

[Code]
{ The PATH entry: the user's PATH for a per-user install, the machine's for an install for all users. }
const
  UserEnvironment = 'Environment';
  SystemEnvironment = 'SYSTEM\CurrentControlSet\Control\Session Manager\Environment';

function EnvironmentRoot: Integer;
begin
  if IsAdminInstallMode then Result := HKEY_LOCAL_MACHINE else Result := HKEY_CURRENT_USER;
end;

function EnvironmentKey: String;
begin
  if IsAdminInstallMode then Result := SystemEnvironment else Result := UserEnvironment;
end;

{ Where ';Dir;' is in ';Paths;' (case-insensitive), 0 when it is not. }
function PathPosition(Paths, Dir: String): Integer;
begin
  Result := Pos(';' + Uppercase(Dir) + ';', ';' + Uppercase(Paths) + ';');
end;

procedure AddToPath(Dir: String);
var
  Paths: String;
begin
  if not RegQueryStringValue(EnvironmentRoot, EnvironmentKey, 'Path', Paths) then Paths := '';
  if PathPosition(Paths, Dir) > 0 then exit;
  if (Paths <> '') and (Copy(Paths, Length(Paths), 1) <> ';') then Paths := Paths + ';';
  RegWriteExpandStringValue(EnvironmentRoot, EnvironmentKey, 'Path', Paths + Dir);
end;

procedure RemoveFromPath(Dir: String);
var
  Paths, Wrapped: String;
  P: Integer;
begin
  if not RegQueryStringValue(EnvironmentRoot, EnvironmentKey, 'Path', Paths) then exit;
  P := PathPosition(Paths, Dir);
  if P = 0 then exit;
  Wrapped := ';' + Paths + ';';
  Delete(Wrapped, P, Length(Dir) + 1);  { ';Dir' out, the ';' after it stays }
  RegWriteExpandStringValue(EnvironmentRoot, EnvironmentKey, 'Path', Copy(Wrapped, 2, Length(Wrapped) - 2));
end;

procedure CurStepChanged(CurStep: TSetupStep);
begin
  if (CurStep = ssPostInstall) and WizardIsTaskSelected('addtopath') then
    AddToPath(ExpandConstant('{app}'));
end;

procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
begin
  if CurUninstallStep = usPostUninstall then
    RemoveFromPath(ExpandConstant('{app}'));
end;
