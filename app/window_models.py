"""The main window's model side: loading a local model, the models dialog, downloads and remote servers."""
from __future__ import annotations

from dataclasses import replace

from app.bridge import Job
from app.widgets.models_dialog import ModelsDialog
from engine import (Failure, ModelError, Progress, RemoteEndpoint, Settings, load_catalog, load_endpoints,
                    remove_endpoint)


class ModelsMixin:
    """Mixed into MainWindow: uses its bridge, settings, status bar and show_error."""

    # -- model ----------------------------------------------------------------------------------
    def load_model(self, settings: Settings) -> Job:
        self.status.loading()

        def progress(p):
            if isinstance(p, Progress):
                self.status.load_progressed(p)

        def done(result):
            info, backend = result
            settings.remote = ""  # a local model answers again
            self.model_info, self.backend_name = info, backend.name
            self.status.loaded(f"{info.name} · {backend.name}")
            self.settings = settings
            self.save_settings()
            # The instructions every question starts with are read now, while the person types.
            options = self.options()
            self.bridge.run_on_engine("Reading the instructions", lambda engine: engine.warm(options))

        def failed(f: Failure):
            self.status.loaded("No model loaded" if self.model_info is None else None)
            self.show_error(f"The model could not be loaded: {f.message}", f.detail)

        return self.bridge.load_model(settings, on_done=done, on_failed=failed, on_event=progress)

    def save_settings(self) -> None:
        """Written on the documents lane: the GUI thread never waits for a disk. Not for a window that must
        leave the person's settings alone (selftest, benchmarks)."""
        if self.persist:
            settings = replace(self.settings)
            self.bridge.read("Saving settings", lambda b: settings.save())

    def open_models(self) -> None:
        """Everything the dialog shows is gathered on the engine lane (the fit checks ask llama.cpp for GPUs)."""
        def gather(engine):
            try:
                catalog = [(e, *e.fits()) for e in load_catalog()]
            except ModelError:
                catalog = []
            return engine.registry.entries(), catalog, load_endpoints()
        self.bridge.run_on_engine("Listing models", gather, on_done=self._show_models,
                                  on_failed=lambda f: self.show_error(f.message))

    def _show_models(self, gathered) -> None:
        entries, catalog, endpoints = gathered
        dialog = ModelsDialog(entries, self.settings, self.backend_name,
                              self.model_info.name if self.model_info else "", self, catalog, endpoints)
        dialog.remote_chosen.connect(lambda endpoint, key: self.use_remote(endpoint, key, dialog))
        dialog.remote_removed.connect(lambda url: self.bridge.read("Removing server", lambda b: remove_endpoint(url)))
        dialog.download_requested.connect(lambda ref: self.pull(ref, dialog))
        dialog.cancel_download.connect(lambda: self.download_job and self.download_job.cancel())

        def imported(entry):
            dialog.show_message(f"Imported {entry.name}.")
            self.bridge.run_on_engine("Listing models", lambda e: e.registry.entries(),
                                      on_done=lambda es: dialog.set_entries(es, entry.path))

        dialog.import_requested.connect(lambda path: self.bridge.run_on_engine(
            "Importing model", lambda e: e.registry.import_model(path), on_done=imported,
            on_failed=lambda f: dialog.show_message(f.message, error=True)))
        dialog.accepted.connect(lambda: self.load_model(dialog.chosen_settings()))
        self.models_dialog = dialog
        dialog.open()

    def use_remote(self, endpoint: RemoteEndpoint, api_key: str = "", dialog: ModelsDialog | None = None) -> Job:
        """Answer through a server from now on; the endpoint is saved, its key goes to the keychain."""
        def done(model: str) -> None:
            self.status.model_label.setText(f"{model} · remote {endpoint.url}")
            self.settings.remote = endpoint.url
            self.save_settings()
            if dialog is not None:
                dialog.show_message(f"Answering with {model} on {endpoint.url}.")
                self.bridge.read("Listing servers", lambda b: load_endpoints(), on_done=dialog.set_remotes)

        def failed(f: Failure) -> None:
            (dialog.show_message(f.message, error=True) if dialog is not None else self.show_error(f.message))

        return self.bridge.use_remote(endpoint, api_key, on_done=done, on_failed=failed)

    def pull(self, ref: str, dialog: ModelsDialog) -> Job | None:
        if self.download_job is not None:
            dialog.show_message("A model is already downloading; wait for it or pause it.", error=True)
            return None
        dialog.download_started()

        def done(path):
            self.download_job = None
            dialog.download_finished(f"Downloaded {path.name}; select it under Installed and choose "
                                     "“Use selected model”.")
            self.bridge.run_on_engine("Listing models", lambda e: e.registry.entries(),
                                      on_done=lambda es: dialog.set_entries(es, self.settings.model))

        def failed(f: Failure):
            self.download_job = None
            paused = f.kind == "cancelled"
            dialog.download_finished("Paused; Download again resumes where it stopped." if paused else f.message,
                                     error=not paused)

        self.download_job = self.bridge.pull(ref, on_done=done, on_failed=failed,
                                             on_event=lambda p: isinstance(p, Progress)
                                             and dialog.download_progress_changed(p))
        return self.download_job

