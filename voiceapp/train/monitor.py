"""Loss curves of a run from `events.jsonl`, for the Train tab (a matplotlib figure)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from voiceapp.train.events import last_run, read_events

STILL_FALLING = 0.03   # the validation loss fell by more than this fraction over the last saves: train on


def validation_still_falling(voice_path: Path | str, workspace: Any) -> tuple[float, float] | None:
    """(validation loss two saves before, at the last save up to the voice file's step) from its experiment's
    events (logs/<model folder>/events.jsonl), when it fell by more than STILL_FALLING; else None."""
    from voiceapp.errors import VoiceAppError
    from voiceapp.voices.file import read_voice_info

    voice_path = Path(voice_path)
    try:
        steps = read_voice_info(voice_path).steps
        exp = workspace.experiment(voice_path.parent.name)
    except VoiceAppError:
        return None
    values = [float(e["mel_l1"]) for e in read_events(exp.events_path, {"validation"})
              if isinstance(e.get("mel_l1"), (int, float)) and (steps is None or int(e.get("step", 0)) <= steps)]
    if len(values) < 3:
        return None
    before, last = values[-3], values[-1]
    return (before, last) if before > 0 and (before - last) / before > STILL_FALLING else None


CURVES = (("mel", "mel L1 ×45"), ("g", "generator total"), ("d", "discriminator"), ("fm", "feature matching ×2"),
          ("kl", "KL"))


def loss_series(events: list[dict[str, Any]]) -> dict[str, tuple[list[int], list[float]]]:
    """{loss name: (steps, values)} from step events, plus "validation" from validation events."""
    series: dict[str, tuple[list[int], list[float]]] = {}
    for event in events:
        if event.get("type") == "step":
            for name, value in (event.get("losses") or {}).items():
                steps, values = series.setdefault(name, ([], []))
                steps.append(int(event["step"]))
                values.append(float(value))
        elif event.get("type") == "validation":
            steps, values = series.setdefault("validation", ([], []))
            steps.append(int(event["step"]))
            values.append(float(event["mel_l1"]))
    return series


def loss_figure(events_path: Path | str, whole_history: bool = True) -> Any:
    """Two panels: training losses by step; validation mel L1 by step (with the best point marked)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    events = read_events(events_path)
    if not whole_history:
        events = last_run(events)
    series = loss_series(events)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3), dpi=90, gridspec_kw={"width_ratios": [2, 1]})
    for name, label in CURVES:
        if name in series:
            left.plot(*series[name], label=label, linewidth=1)
    left.set_xlabel("step")
    left.set_title("training losses", fontsize=9)
    if series:
        left.legend(fontsize=7, loc="upper right")
    if "validation" in series:
        steps, values = series["validation"]
        right.plot(steps, values, marker="o", markersize=3, linewidth=1, color="#c62828")
        best = min(range(len(values)), key=values.__getitem__)
        right.scatter([steps[best]], [values[best]], s=60, facecolors="none", edgecolors="black",
                      label=f"best (step {steps[best]})")
        right.legend(fontsize=7)
    right.set_xlabel("step")
    right.set_title("validation mel L1 (lower is better)", fontsize=9)
    fig.tight_layout()
    plt.close(fig)
    return fig
