"""The models Ponder knows: the built-in ones (one of them the default), GGUF files in the models folder, and files
the user imported."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from engine.chat.templates import FORMATS
from engine.errors import ModelError
from engine.models.builtin import BuiltinModel, available_models, ensure_model, find_builtin, is_available, model_path
from engine.models.default import default_model, ensure_default_model
from engine.models.inspect import ModelInfo, inspect_model
from engine.paths import data_dir, models_dir
from engine.settings import read_json, write_json_atomic


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """A listed model; `problem` says why it cannot be used (info is None then)."""

    name: str
    path: str
    source: str  # default (a built-in model), builtin, folder, imported
    info: ModelInfo | None
    problem: str = ""
    prompt_format: str = "auto"
    description: str = ""  # built-in models say what they are

    @property
    def is_builtin(self) -> bool:
        """Comes with Ponder: assembled on first use, never deleted."""
        return self.source in BUILTIN_SOURCES

    @property
    def is_loadable(self) -> bool:
        """A usable file, or a built-in model that loading will assemble first."""
        return self.info is not None or (self.is_builtin and self.problem == NOT_YET_PREPARED)


BUILTIN_SOURCES = ("default", "builtin")
NOT_YET_PREPARED = "prepared on first use"


class Registry:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or data_dir() / "models.json"
        self._cache: dict[tuple, ModelInfo | ModelError] = {}

    def _load(self) -> dict:
        data = read_json(self.path, {})
        data.setdefault("imported", [])
        data.setdefault("formats", {})
        return data

    def _inspect(self, path: Path) -> ModelInfo | ModelError:
        try:
            st = path.stat()
            key = (str(path), st.st_size, st.st_mtime_ns)
        except OSError:
            key = (str(path), -1, -1)
        if key not in self._cache:
            try:
                self._cache[key] = inspect_model(path)
            except ModelError as e:
                self._cache[key] = e
        return self._cache[key]

    def _entry(self, path: Path, source: str, formats: dict) -> ModelEntry:
        found = self._inspect(path)
        fmt = formats.get(str(path), "auto")
        if isinstance(found, ModelError):
            return ModelEntry(path.stem, str(path), source, None, found.message, fmt)
        return ModelEntry(path.stem, str(path), source, found, "", fmt)

    def _builtin_entry(self, model: BuiltinModel, source: str, formats: dict) -> ModelEntry:
        path = model_path(model)
        if path.exists():
            return replace(self._entry(path, source, formats), name=model.name, description=model.description)
        problem = NOT_YET_PREPARED if is_available(model) else "not installed with this copy of Ponder"
        return ModelEntry(model.name, str(path), source, None, problem, formats.get(str(path), "auto"),
                          model.description)

    def entries(self) -> list[ModelEntry]:
        """The default model first, the other built-in models this copy of Ponder has, then files."""
        data = self._load()
        default = default_model()
        out = [self._builtin_entry(default, "default", data["formats"])]
        out += [self._builtin_entry(m, "builtin", data["formats"]) for m in available_models() if m != default]
        seen = {Path(e.path).resolve() for e in out}
        for path in sorted(models_dir().glob("*.gguf")):
            if path.resolve() not in seen:
                seen.add(path.resolve())
                out.append(self._entry(path, "folder", data["formats"]))
        for raw in data["imported"]:
            path = Path(raw)
            if path.resolve() not in seen:
                seen.add(path.resolve())
                out.append(self._entry(path, "imported", data["formats"]))
        return out

    def import_model(self, path: str | Path) -> ModelEntry:
        """Add a GGUF file where it lies (no copy); ModelError if it is not a usable model."""
        path = Path(path).expanduser().resolve()
        info = inspect_model(path)
        data = self._load()
        if str(path) not in data["imported"]:
            data["imported"].append(str(path))
            write_json_atomic(self.path, data)
        return ModelEntry(path.stem, str(path), "imported", info, "", data["formats"].get(str(path), "auto"))

    def forget(self, name_or_path: str) -> None:
        """Remove an imported model from the list (its file stays where it is)."""
        entry = self.find(name_or_path)
        data = self._load()
        if entry.path not in data["imported"]:
            raise ModelError(f"{entry.name} was not imported, so it cannot be forgotten; delete its file instead.")
        data["imported"].remove(entry.path)
        write_json_atomic(self.path, data)

    def remove(self, name_or_path: str) -> None:
        """Delete a model file that lives in the models folder (downloaded or dropped there)."""
        entry = self.find(name_or_path)
        path = Path(entry.path)
        if entry.source != "folder":
            what = "built into Ponder" if entry.is_builtin else "an imported file (use forget)"
            raise ModelError(f"{entry.name} is {what}; only files in the models folder are deleted.")
        path.unlink(missing_ok=True)
        Path(str(path) + ".part").unlink(missing_ok=True)
        Path(str(path) + ".part.json").unlink(missing_ok=True)

    def set_format(self, name_or_path: str, prompt_format: str) -> None:
        if prompt_format not in FORMATS:
            raise ModelError(f"Unknown prompt format '{prompt_format}'; choose one of: {', '.join(FORMATS)}.")
        entry = self.find(name_or_path)
        data = self._load()
        data["formats"][entry.path] = prompt_format
        write_json_atomic(self.path, data)

    def format_for(self, path: str | Path) -> str:
        return self._load()["formats"].get(str(Path(path).resolve()), "auto")

    def find(self, name_or_path: str) -> ModelEntry:
        candidate = Path(name_or_path).expanduser()
        for entry in self.entries():
            if name_or_path in (entry.name, entry.path) or (candidate.exists() and
                                                            candidate.resolve() == Path(entry.path).resolve()):
                return entry
        raise ModelError(f"No model called '{name_or_path}'; `ponder models` lists them.")

    def resolve(self, name_or_path: str | None, on_progress=None, is_cancelled=None) -> Path:
        """The file to load: the default model when None, else a listed name or any path; a built-in model is
        assembled first if needed."""
        if not name_or_path:
            return ensure_default_model(on_progress, is_cancelled)
        builtin = find_builtin(name_or_path)
        if builtin is not None:
            return ensure_model(builtin, on_progress, is_cancelled)
        candidate = Path(name_or_path).expanduser()
        if candidate.suffix == ".gguf" or candidate.exists() or "/" in name_or_path or "\\" in name_or_path:
            return candidate.resolve()
        return Path(self.find(name_or_path).path)
