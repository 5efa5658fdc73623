"""Typer's click: newer typer releases vendor it as ``typer._click``, older ones depend on click."""

from __future__ import annotations

from types import ModuleType


def _load() -> ModuleType:
    try:
        from typer._click import exceptions  # type: ignore[attr-defined,unused-ignore]
    except ImportError:  # typer < 0.20 uses the click package
        from click import exceptions  # type: ignore[no-redef,import-not-found,unused-ignore]
    return exceptions  # type: ignore[no-any-return,unused-ignore]


click_exceptions = _load()
