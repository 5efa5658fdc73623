"""What a command needs, built on first use: settings, then the database, then the desk."""

from __future__ import annotations

from pathlib import Path

from hms_tui.config import Settings, load_settings
from hms_tui.db.connection import Database
from hms_tui.services.desk import Desk


class AppContext:
    def __init__(self, config_path: Path | None) -> None:
        self.config_path = config_path
        self._settings: Settings | None = None
        self._db: Database | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
        return self._settings

    def database(self, *, upgrade: bool = False) -> Database:
        if self._db is None:
            from hms_tui.services.connect import open_database

            self._db = open_database(self.settings, upgrade=upgrade)
        return self._db

    def desk(self) -> Desk:
        return Desk(self.database())

    def close(self) -> None:
        if self._db is not None:
            self._db.dispose()
            self._db = None
