"""The job panel above the tabs: what runs, what waits for it (the jobs of every tab share one queue), their
progress, and a Cancel for each; a job whose browser tab was closed is cancelled (`app.unload`)."""

from __future__ import annotations

import time
from typing import Any

import gradio as gr

from voiceapp.services import Services
from voiceapp.ui.jobs import cancel_session_jobs

REFRESH_S = 2.0


def board_markdown(services: Services) -> str:
    jobs = services.board.list()
    if not jobs:
        return "No job is running. Jobs of every tab run one at a time; what waits is listed here."
    now = time.time()
    lines = ["| job | state | progress |", "|---|---|---|"]
    for job in jobs:
        if job.state == "running":
            seconds = int(now - (job.started_at or now))
            state = f"running for {seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"running for {seconds} s"
            progress = f"{100 * job.fraction:.0f}% {job.message}".strip()
        else:
            ahead = sum(1 for j in jobs if j.queued_at < job.queued_at)
            state = "cancelled" if job.state == "cancelled" else f"waiting ({ahead} ahead)"
            progress = ""
        lines.append(f"| {job.label} | {state} | {progress.replace('|', '/')} |")
    return "\n".join(lines)


def job_choices(services: Services) -> list[tuple[str, int]]:
    return [(f"{job.label} ({job.state})", job.id) for job in services.board.list() if job.state != "cancelled"]


def refresh(services: Services, picked: int | None) -> tuple[str, Any]:
    choices = job_choices(services)
    values = [v for _, v in choices]
    return board_markdown(services), gr.update(choices=choices, value=picked if picked in values else
                                               (values[0] if values else None))


def cancel(services: Services, job_id: int | None) -> str:
    """Handler of Cancel: a waiting job will not start; a running one stops at its next check."""
    job = services.board.cancel(int(job_id)) if job_id is not None else None
    if job is None:
        return "Pick a job to cancel."
    if job.state == "running":
        services.cancel_job(job.kind)
        return f"Stopping **{job.label}**…"
    return f"**{job.label}** will not start."


def build(services: Services, app: gr.Blocks) -> None:
    with gr.Accordion("Jobs", open=True, elem_id="jobs-panel"):
        with gr.Row(equal_height=True):
            table = gr.Markdown(board_markdown(services), elem_id="jobs-table")
            with gr.Column(scale=0, min_width=260):
                picked = gr.Dropdown(label="Job", choices=[], value=None, elem_id="jobs-pick")
                do_cancel = gr.Button("Cancel job", variant="stop", size="sm")
        said = gr.Markdown()
    timer = gr.Timer(REFRESH_S)
    timer.tick(lambda p: refresh(services, p), [picked], [table, picked], queue=False, show_progress="hidden")
    do_cancel.click(lambda j: cancel(services, j), [picked], [said], queue=False).then(
        lambda p: refresh(services, p), [picked], [table, picked], queue=False, show_progress="hidden")

    def closed(request: gr.Request) -> None:
        cancel_session_jobs(services, getattr(request, "session_hash", "") or "")

    app.unload(closed)
