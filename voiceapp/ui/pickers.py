"""Pickers that follow the workspace: their choices are read again whenever the page loads and whenever their
tab is shown (`demo.load`, tab `.select`), and the user's last choice is remembered in the browser
(`gr.BrowserState`), so a model trained, imported or renamed a minute ago is there without a Refresh button.

A tab's `build(services)` returns the `Picker`s it made; `ui/app.py` wires them to the page load and the tab.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr


@dataclass
class Picker:
    """A component whose choices (a dropdown) or rows (a table) come from the workspace."""

    component: Any
    read: Callable[[], Any]          # dropdown: the choices (values or (label, value) pairs); table: the rows
    memory: Any = None               # gr.BrowserState holding the last value the user picked (None: not remembered)
    table: bool = False
    fallback: str = "first"          # with no remembered/current value: "first", "last" or "keep" (pick_value)
    inputs: tuple[Any, ...] = ()     # components whose values `read` takes (e.g. a "show every save" box)


def choice_values(choices: Sequence[Any]) -> list[Any]:
    return [c[1] if isinstance(c, (tuple, list)) else c for c in choices]


def pick_value(choices: Sequence[Any], current: Any, remembered: Any, fallback: str = "first") -> Any:
    """The value to show: the user's remembered choice if it still exists, else the current one, else the first
    (or the last, for lists sorted oldest first; "keep": what is in the box) or None."""
    values = choice_values(choices)
    for candidate in (remembered, current):
        if candidate not in (None, "") and candidate in values:
            return candidate
    if current == "" and "" in values:
        return ""
    if fallback == "keep":   # a name box that also takes new names: leave what the user typed
        return current
    if not values:
        return None
    return values[-1] if fallback == "last" else values[0]


def _secret(services: Any) -> str:
    """BrowserState encrypts with a secret; one derived from the workspace keeps choices across server restarts
    (the values are names of the user's own models and datasets, nothing private)."""
    return hashlib.sha256(str(getattr(services.workspace, "root", "")).encode()).hexdigest()


def follow(services: Any, component: Any, read: Callable[..., Any], key: str | None = None,
           fallback: str = "first", inputs: Sequence[Any] = ()) -> Picker:
    """Make `component` follow the workspace through `read` (called with the values of `inputs`); with `key`,
    remember the user's choice under it."""
    memory = None
    if key:
        memory = gr.BrowserState(None, storage_key=f"voiceapp-{key}", secret=_secret(services))
        component.change(lambda value: value, [component], [memory], queue=False, show_progress="hidden")
    return Picker(component, read, memory, table=isinstance(component, gr.Dataframe), fallback=fallback,
                  inputs=tuple(inputs))


def refreshed(picker: Picker, current: Any, remembered: Any, *values: Any) -> Any:
    """The update of one picker after the workspace is read again (`values`: those of `picker.inputs`)."""
    found = picker.read(*values)
    if picker.table:
        return gr.update(value=found)
    value = pick_value(found, current, remembered, picker.fallback)
    if value == current:   # only the choices: what the user typed meanwhile is not overwritten
        return gr.update(choices=found)
    return gr.update(choices=found, value=value)


def updater(pickers: Sequence[Picker]) -> tuple[Callable[..., list[Any]], list[Any], list[Any]]:
    """(fn, inputs, outputs) of an event that reads every picker again (e.g. chained with `.then` on a job)."""
    pickers = [p for p in pickers if p is not None]
    components = [p.component for p in pickers]
    memories = [p.memory for p in pickers if p.memory is not None]
    extra = [c for p in pickers for c in p.inputs]

    def update(*values: Any) -> Any:
        currents, rest = values[:len(pickers)], iter(values[len(pickers):])
        remembered = [next(rest) if p.memory is not None else None for p in pickers]
        found = tuple(refreshed(p, current, memory, *(next(rest) for _ in p.inputs))
                      for p, current, memory in zip(pickers, currents, remembered))
        return found if len(found) > 1 else found[0]   # Gradio takes one output's value as it is

    return update, [*components, *memories, *extra], components


def wire(triggers: list[Any], pickers: Sequence[Picker]) -> None:
    """Re-read every picker on each of `triggers` (the page load, the tab being shown)."""
    if any(p is not None for p in pickers):
        gr.on(triggers, *updater(pickers), queue=False, show_progress="hidden")


def after(event: Any, pickers: Sequence[Picker]) -> None:
    """Re-read `pickers` when the job of `event` has ended (whether it succeeded or not)."""
    if any(p is not None for p in pickers):
        event.then(*updater(pickers), queue=False, show_progress="hidden")
