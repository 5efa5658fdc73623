"""Typer's click: newer typer releases vendor it as ``typer._click``, older ones depend on click."""

from __future__ import annotations

from types import ModuleType
from typing import Any


def _load() -> ModuleType:
    try:
        from typer._click import exceptions  # type: ignore[attr-defined,unused-ignore]
    except ImportError:  # typer < 0.20 uses the click package
        from click import exceptions  # type: ignore[no-redef,import-not-found,unused-ignore]
    return exceptions  # type: ignore[no-any-return,unused-ignore]


click_exceptions = _load()


def first_sentence(text: str) -> str:
    """The first sentence of a docstring, whole (a command list wraps it; never cut it)."""
    flat = " ".join(text.split())
    end = flat.find(". ")
    return flat if end < 0 else flat[: end + 1]


def readable_help() -> None:
    """Help that reads well at 80 columns. Typer 0.29 (plain, non-rich mode) cuts each
    command's summary to fit with "...", prints an argument as ``VISIT <int range>`` and its
    usage as ``{VISIT}``: our metavars already say what to type, so the summaries are whole
    first sentences (the list wraps them) and arguments are shown by their metavar. Only
    attributes this typer has are changed."""
    import inspect

    from typer import core

    def short_help(self: Any, limit: int = 45) -> str:
        return inspect.cleandoc(self.short_help) if self.short_help else \
            first_sentence(self.help or "")

    for cls in (core.TyperCommand, core.TyperGroup):
        cls.get_short_help_str = short_help  # type: ignore[method-assign]
    argument = core.TyperArgument
    if hasattr(argument, "display_type_rich"):
        argument.display_type_rich = lambda self, ctx: None  # type: ignore[method-assign,assignment,unused-ignore]
    if hasattr(argument, "_usage_display_name"):
        argument._usage_display_name = (  # type: ignore[method-assign,unused-ignore]
            lambda self: self.display_name_raw if self.required else f"[{self.display_name_raw}]")
    if hasattr(argument, "_get_number_range_help_str"):
        argument._get_number_range_help_str = lambda self: None  # type: ignore[method-assign,unused-ignore]
