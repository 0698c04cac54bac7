"""Live tab: speak into the microphone and hear the voice model in the same page, with the latency measured.

Layout and wiring only. The audio never passes through Gradio: the buttons call the page's script
(voiceapp/ui/static/live.js, loaded by `LIVE_HEAD`) through `js=` handlers, and the script streams PCM over the
app's own WebSocket (voiceapp/live/server.py) to a `LiveSession`.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from voiceapp.live.server import STATIC_PATH
from voiceapp.services import Services
from voiceapp.ui import pickers

PASSTHROUGH = "passthrough"
BLOCK_CHOICES_MS = (40, 60, 100, 200, 300, 500)
DEFAULT_BLOCK_MS = 100
LOOKAHEAD_MS = 20
GATE_OFF_DB = -80
LIVE_HEAD = f'<script src=".{STATIC_PATH}/live.js"></script>'

INTRO = ("Speak into the microphone and hear the voice model in this page, a block at a time. **Block size** is the "
         "one latency-vs-quality control: smaller blocks answer sooner, larger ones give the model more to work "
         "with and cost less per second. The latency shown is *measured* on the page (microphone sample to played "
         "sample, plus what the browser reports for its audio output), the load is compute time per block ÷ block "
         "length: above 1 this machine cannot keep up, and the voice drops to a lighter quality level instead of "
         "falling behind. Use headphones: the speakers would feed back into the microphone. Changing a setting "
         "while running restarts the session.")

PANEL = """
<div id="va-live-panel">
  <div class="va-live-meter"><span>in</span><div class="va-live-track"><div id="va-live-in"></div></div></div>
  <div class="va-live-meter"><span>out</span><div class="va-live-track"><div id="va-live-out"></div></div></div>
  <div id="va-live-stats">Stopped.</div>
  <div id="va-live-warning" class="va-message" style="display: none"></div>
</div>
"""

CSS = """
.va-live-meter {display: flex; align-items: center; gap: 8px; margin: 4px 0}
.va-live-meter span {width: 2.5em; font-size: 0.85em; opacity: 0.8}
.va-live-track {flex: 1; height: 10px; border-radius: 5px; background: rgba(127, 127, 127, 0.2); overflow: hidden}
.va-live-track div {height: 100%; width: 0; transition: width 50ms linear}
#va-live-stats {font-variant-numeric: tabular-nums; margin: 8px 0}
"""

# the components' values (in `_inputs` order) -> LiveSettings fields, in the page
_SETTINGS_JS = (f"(model, f0_method, transpose, blend, gate, block) => ({{model, f0_method, transpose, blend, "
                f"gate_db: gate <= {GATE_OFF_DB} ? null : gate, block_ms: block, lookahead_ms: {LOOKAHEAD_MS}}})")


def model_choices(services: Services) -> list[tuple[str, str]]:
    """(label, model name): passthrough first, then every voice model with its engine."""
    from voiceapp.errors import VoiceAppError
    from voiceapp.voices.file import read_voice_info
    from voiceapp.voices.store import list_models

    found = [("passthrough (no conversion: the transport's own latency)", PASSTHROUGH)]
    for entry in list_models(services.workspace):
        try:
            engine = read_voice_info(entry.path).engine
        except VoiceAppError:
            engine = "unreadable"
        found.append((f"{entry.name} ({engine})", entry.name))
    return found


def f0_choices(services: Services) -> list[tuple[str, str]]:
    from voiceapp.ui.infer_tab import f0_choices as usable

    return usable(services)[0]


def build(services: Services) -> list[pickers.Picker]:
    gr.Markdown(INTRO)
    with gr.Row():
        model = gr.Dropdown(model_choices(services), value=PASSTHROUGH, label="Voice model",
                            elem_id="va-live-model")
        f0 = gr.Dropdown(f0_choices(services), value="pm", label="Pitch method (pm is the cheapest)",
                         elem_id="va-live-f0")
        block = gr.Dropdown([(f"{ms} ms", ms) for ms in BLOCK_CHOICES_MS], value=DEFAULT_BLOCK_MS,
                            label=f"Block size: latency ↔ quality (+ {LOOKAHEAD_MS} ms look-ahead)",
                            elem_id="va-live-block")
    with gr.Row():
        transpose = gr.Slider(-24, 24, value=0, step=1, label="Transpose (semitones)")
        blend = gr.Slider(0.0, 1.0, value=0.75, step=0.05, label="Index / neighbour blend")
        gate = gr.Slider(GATE_OFF_DB, -20, value=-50, step=1, label=f"Noise gate (dBFS; {GATE_OFF_DB} = off)")
    with gr.Row():
        start = gr.Button("Start", variant="primary", elem_id="va-live-start")
        stop = gr.Button("Stop", elem_id="va-live-stop")
    gr.HTML(PANEL)
    _wire(start, stop, [model, f0, transpose, blend, gate, block])
    return [pickers.follow(services, model, lambda: model_choices(services), key="live-model")]


def _wire(start: Any, stop: Any, inputs: list[Any]) -> None:
    """Client-side handlers only: Start/Stop and setting changes go to the page's script, never to the server."""
    call = f"(...values) => {{ window.voiceappLive.%s(({_SETTINGS_JS})(...values)); return []; }}"
    start.click(None, inputs, None, js=call % "start", queue=False)
    stop.click(None, None, None, js="() => { window.voiceappLive.stop(); return []; }", queue=False)
    model, f0, transpose, blend, gate, block = inputs
    for component in (model, f0, block):
        component.change(None, inputs, None, js=call % "update", queue=False)
    for component in (transpose, blend, gate):
        component.release(None, inputs, None, js=call % "update", queue=False)
