"""The one place where the UI runs library stages: progress -> gr.Progress, VoiceAppError -> gr.Error."""

from __future__ import annotations

import contextvars
import inspect
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Callable

import gradio as gr

from voiceapp.errors import Cancelled, VoiceAppError, storage_error
from voiceapp.progress import Progress

log = logging.getLogger(__name__)

# Jobs that use the model compute (CPU or GPU) share one queue, one job at a time.
COMPUTE_QUEUE: dict[str, Any] = {"concurrency_id": "compute", "concurrency_limit": 1}
# (job board, job id) of the job this thread runs, so its progress also reaches the job panel
_CURRENT: contextvars.ContextVar[tuple[Any, int] | None] = contextvars.ContextVar("voiceapp_job", default=None)


def named(names: Iterable[str], values: Iterable[Any]) -> dict[str, Any]:
    """A tab's settings by name: Gradio passes the values of a handler's inputs in the order of their components,
    so a tab lists its settings components in a dict (name -> component) and gives the values back their names."""
    return dict(zip(names, values, strict=True))


def gradio_progress(progress: Any) -> Progress:
    current = _CURRENT.get()

    def report(fraction: float, message: str) -> None:
        if current is not None:
            current[0].report(current[1], fraction, message)
        try:
            progress(min(max(float(fraction), 0.0), 1.0), desc=message)
        except Exception:  # noqa: BLE001 - a closed browser tab must not kill the job
            pass

    return report


def message_box() -> Any:
    """The box beside a button where its job's error stays readable until the user acts again (hidden when empty)."""
    return gr.Markdown(visible=False, elem_classes=["va-message"])


def _shown(err: gr.Error) -> Any:
    title = getattr(err, "title", "Error") or "Error"
    mark = "⏹" if title == "Stopped" else "⚠"
    return gr.update(value=f"{mark} **{title}** — {err.message}", visible=True)


def beside(fn: Callable[..., Any], n_outputs: int) -> Callable[..., Any]:
    """Wrap a handler so that an expected error (gr.Error) is shown in a `message_box` (the event's first output)
    and stays there until the button is pressed again, instead of a toast that fades and red "Error" badges over
    the outputs; the other `n_outputs` outputs keep their values. The error is logged as one line."""
    takes_progress = "progress" in inspect.signature(fn).parameters

    def handler(*args: Any, progress: Any = gr.Progress()) -> Any:
        try:
            result = fn(*args, progress=progress) if takes_progress else fn(*args)
        except gr.Error as err:
            log.info("%s: %s", getattr(err, "title", "Error"), " ".join(str(err.message).split()))
            return (_shown(err), *([gr.skip()] * n_outputs))
        values = (result if n_outputs > 1 else (result,)) if n_outputs else ()
        return (gr.update(value="", visible=False), *values)

    return handler


def queued(services: Any, trigger: Any, kind: str, label: str, fn: Callable[..., Any], inputs: list[Any],
           outputs: list[Any], **queue: Any) -> Any:
    """Wire a job so that the job panel shows it from the moment its button is pressed: `trigger` (e.g.
    `button.click`) first puts it on `services.board` as waiting (no queue), then runs `fn` in the queue
    (`queue`: e.g. COMPUTE_QUEUE) as running, with its progress, and takes it off when it ends. A job cancelled
    while it waits does not run. `outputs[0]` must be a `message_box` (errors are shown there, see `beside`).
    `kind` is the key its Stop button cancels. Returns the event of the job, for more to chain on."""
    ticket = gr.State(None)
    takes_progress = "progress" in inspect.signature(fn).parameters

    def enter(request: gr.Request) -> int:
        return services.board.add(kind, label, getattr(request, "session_hash", "") or "")

    def guarded(job_id: int | None, *args: Any, progress: Any = None) -> Any:
        if not services.board.begin(job_id):
            raise gr.Error(f"{label} was cancelled before it started.", title="Stopped", print_exception=False)
        token = _CURRENT.set((services.board, job_id))
        try:
            return fn(*args, progress=progress) if takes_progress else fn(*args)
        finally:
            _CURRENT.reset(token)
            services.board.end(job_id)

    return trigger(enter, None, [ticket], queue=False, show_progress="hidden").then(
        beside(guarded, len(outputs) - 1), [ticket, *inputs], outputs, **queue)


def cancel_session_jobs(services: Any, session: str) -> int:
    """Cancel what one browser session started or queued (its tab was closed: nothing waits for the result)."""
    jobs = services.board.of_session(session)
    for job in jobs:
        services.board.cancel(job.id)
        if job.state == "running":
            services.cancel_job(job.kind)
    if jobs:
        log.info("browser session closed: cancelled %s", ", ".join(j.label for j in jobs))
    return len(jobs)


def run_job(fn: Callable[..., Any], *args: Any, progress: Any = None, **kwargs: Any) -> Any:
    """Call `fn(*args, progress=..., **kwargs)`; show expected failures as a message in the browser."""
    try:
        report = gradio_progress(progress) if progress is not None else (lambda f, m: None)
        return fn(*args, progress=report, **kwargs)
    except Cancelled as err:
        raise gr.Error(str(err), title="Stopped", print_exception=False) from err
    except VoiceAppError as err:   # expected: the message says what to do, no traceback in the log
        log.info("%s: %s", type(err).__name__, " ".join(str(err).split()))
        raise gr.Error(str(err), print_exception=False) from err
    except gr.Error:
        raise
    except Exception as err:  # noqa: BLE001 - the one place that turns crashes into a message
        setup = storage_error(err)  # a full, read-only or forbidden disk: the user's setup, not a crash
        if setup is not None:
            log.info("%s", setup)
            raise gr.Error(str(setup), print_exception=False) from err
        log.exception("job failed")
        raise gr.Error(f"Unexpected error ({type(err).__name__}: {err}). Details in logs/app.log.") from err


def typed_folder(services: Any, text: str | None, what: str = "folder", inside: Path | None = None) -> Path | None:
    """A folder of the server typed into a text box, resolved; None when the box is empty.

    Refused (gr.Error) while the app is shared (--share, a non-loopback --host), and when the folder lies
    outside the workspace (or outside `inside`): the web app reads and writes no other folder of the server.
    """
    if not (text or "").strip():
        return None
    if getattr(services, "shared", False):
        raise gr.Error(f"Folders of the server cannot be typed while the app is shared (--share or a --host other "
                       f"than 127.0.0.1), so the {what} {text.strip()!r} was not used: upload the files instead, or "
                       f"run the app on 127.0.0.1.")
    try:
        return services.workspace.server_path(text, what, inside)
    except VoiceAppError as err:
        raise gr.Error(str(err)) from err
