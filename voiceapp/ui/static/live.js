// Voiceapp Live tab: microphone -> AudioWorklet -> (a Worker's) WebSocket of raw PCM -> the app's server
// (voiceapp/live/server.py) -> the same WebSocket -> the same AudioWorklet -> speakers. The Live tab's buttons call
// window.voiceappLive.start/stop/update through Gradio's `js=` event handlers; the panel (voiceapp/ui/live_tab.py)
// shows what `render` writes.
//
// Measured latency = the delay the worklet measures between capturing a sample and playing its conversion (on the
// AudioContext's frame clock) + the browser's reported output latency (baseLatency + outputLatency) + the input
// track's reported latency where the browser gives one.
//
// The socket runs in a Worker (live-socket.js) that the worklet talks to directly.
//
// Test hook (bench/live.py, tests/test_live_browser.py): voiceappLive.record(seconds) resolves to
// {rate, startFrame, mic, played, delayMedianMs} (base64 float32 of what the worklet captured and played,
// frame-aligned, and the median of the delay the page measured meanwhile);
// voiceappLive.history holds the session's stats messages (the last 3000: 10 minutes), each with its time `t`.
(() => {
  if (window.voiceappLive) return;
  const here = document.currentScript ? document.currentScript.src : location.href;

  const b64 = (floats) => {
    const bytes = new Uint8Array(floats.buffer, floats.byteOffset, floats.byteLength);
    let text = "";
    for (let i = 0; i < bytes.length; i += 0x8000) {
      text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(text);
  };
  const fmt = (x, digits = 0) => (x === null || x === undefined || !isFinite(x)) ? "–" : Number(x).toFixed(digits);

  class Live {
    constructor() {
      this.state = "stopped";
      this.sendFrames = 128;     // samples per socket message: one render quantum (2.7 ms at 48 kHz)
      this.jitter = {growth: 1.0, calmWindows: 4, shrinkMs: 2, shrinkShare: 0.1};   // the worklet's margin policy
      this.latencyHint = 0;      // the smallest audio buffer the device allows (bench: 22 vs 50 ms reported)
      this.marginMs = 5;         // the least jitter-buffer margin (the worklet widens it where playback starves)
      this.reset();
    }

    reset() {
      this.history = [];
      this.last = {};
      this.delayMs = null;
      this.error = null;
      this.worklet = null;
      this.gapFrames = [];
      this.gapWarning = null;
    }

    async start(settings) {
      if (this.state !== "stopped") return this.update(settings);
      this.reset();
      this.settings = settings;
      this.state = "starting";
      this.render("Starting: microphone…");
      try {
        await this.openAudio();
        this.render("Starting: loading the voice model…");
        await this.openSocket();
      } catch (err) {
        this.fail(this.explain(err));
      }
    }

    explain(err) {
      const name = err && err.name;
      if (name === "NotAllowedError") return "The browser refused the microphone: allow it for this page (the " +
        "icon in the address bar) and press Start again.";
      if (name === "NotFoundError") return "No microphone found: connect one and press Start again.";
      if (name === "NotReadableError") return "The microphone is busy or unavailable (another program may hold " +
        "it): free it and press Start again.";
      return err && err.message ? err.message : String(err);
    }

    async openAudio() {
      if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
        throw new Error("This page has no microphone access: open it as http://127.0.0.1 or http://localhost " +
                        "(or https), which browsers treat as secure.");
      }
      this.ctx = new AudioContext({latencyHint: this.latencyHint});
      await this.ctx.audioWorklet.addModule(new URL("live-worklet.js", here).href);
      this.stream = await navigator.mediaDevices.getUserMedia({audio: {
        echoCancellation: false, noiseSuppression: false, autoGainControl: false, channelCount: 1}});
      this.source = this.ctx.createMediaStreamSource(this.stream);
      this.node = new AudioWorkletNode(this.ctx, "voiceapp-live", {
        numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1], channelCount: 1,
        channelCountMode: "explicit", processorOptions: {marginMs: this.marginMs, ...this.jitter}});
      this.node.port.onmessage = (event) => this.fromWorklet(event.data);
      this.source.connect(this.node);
      this.node.connect(this.ctx.destination);
      if (this.ctx.state !== "running") await this.ctx.resume();
    }

    openSocket() {
      // the socket lives in a Worker (live-socket.js), wired to the worklet by a MessageChannel: the audio path
      // never waits for this page's main thread
      return new Promise((resolve, reject) => {
        const url = new URL("../ws", here);
        url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
        const worker = new Worker(new URL("live-socket.js", here).href);
        const channel = new MessageChannel();
        this.socket = worker;
        worker.onmessage = (event) => {
          if (this.socket !== worker) return;
          const msg = event.data;
          if (msg.type === "open") { this.sendStart(); resolve(); }
          else if (msg.type === "error") reject(new Error("Cannot open the Live connection to the server."));
          else if (msg.type === "text") this.fromServer(msg.text);
          else if (msg.type === "trace" && this.onTrace) this.onTrace(msg.rows);
          else if (msg.type === "closed" && this.state !== "stopped") {
            const why = msg.code === 1008 ? " (refused: log in again, or too many Live sessions)" : "";
            this.fail(`The Live connection closed${why}.`);
          }
        };
        this.node.port.postMessage({type: "socket"}, [channel.port1]);
        worker.postMessage({type: "open", url: url.href, sendFrames: this.sendFrames}, [channel.port2]);
      });
    }

    sendStart() {
      const s = {...this.settings, device_rate: this.ctx.sampleRate};
      this.socket.postMessage({type: "send", text: JSON.stringify({type: "start", settings: s})});
    }

    update(settings) {
      this.settings = settings;
      if (this.state === "stopped" || !this.socket) return;
      this.state = "starting";
      this.render("Restarting with the new settings…");
      this.sendStart();
    }

    stop() {
      this.state = "stopped";
      const socket = this.socket;
      this.socket = null;
      if (socket) socket.postMessage({type: "close"});
      if (this.stream) this.stream.getTracks().forEach((t) => t.stop());
      if (this.ctx) this.ctx.close();
      this.ctx = this.node = this.source = this.stream = null;
      this.meter("in", -120);
      this.meter("out", -120);
      this.render(this.error ? null : "Stopped.");
    }

    fail(message) {
      this.error = message;
      this.stop();
      this.warn(message);
      this.render("Stopped.");
    }

    fromWorklet(msg) {
      if (msg.type === "stats") {
        if (msg.delayFrames !== null && this.ctx) {
          this.delayMs = 1000 * msg.delayFrames / this.ctx.sampleRate;
        }
        this.gaps(msg);
        this.worklet = msg;
      } else if (msg.type === "levels") {
        this.meter("in", msg.inDb);
        this.meter("out", msg.outDb);
      } else if (msg.type === "recording" && this.onRecording) {
        this.onRecording(msg);
      }
    }

    fromServer(text) {
      const msg = JSON.parse(text);
      if (msg.type === "error") {
        this.fail(msg.message);
      } else if (msg.type === "ready") {
        this.state = "running";
        this.stats(msg.stats || {});
      } else if (msg.type === "stats") {
        this.stats(msg);
      }
    }

    traceTransport(on) {
      // the benchmark's timing hook: on=true starts recording the worker's send/receive times; on=false resolves
      // to the rows [time ms, capture index, 0 = microphone sent | 1 = converted audio received]
      return new Promise((resolve) => {
        if (!this.socket) { resolve([]); return; }
        if (on) { this.socket.postMessage({type: "trace", on: true}); resolve([]); return; }
        this.onTrace = (rows) => { this.onTrace = null; resolve(rows); };
        this.socket.postMessage({type: "trace", on: false});
      });
    }

    gaps(msg) {
      // the share of the last second the page had nothing to play (the worklet reports every 250 ms)
      const last = this.worklet;
      this.gapFrames = (this.gapFrames || []).concat(last ? [msg.starved - last.starved] : []).slice(-4);
      const share = this.gapFrames.reduce((a, b) => a + b, 0) / (this.gapFrames.length * 0.25 * msg.frameRate || 1);
      const was = this.gapWarning;
      this.gapWarning = share > 0.1 ? `Playback had gaps in ${Math.round(100 * share)}% of the last second: this ` +
        "machine (or the connection) cannot keep up. A larger block or a lighter model helps." : null;
      if (was !== this.gapWarning) this.warn(this.warningText());
    }

    warningText() {
      const s = this.last || {};
      const parts = [s.warning, s.server_dropped_s > 0 ? `The server fell ${fmt(s.server_dropped_s, 1)} s behind ` +
        "and dropped that audio to stay live." : null, this.gapWarning];
      return parts.filter(Boolean).join(" ") || null;
    }

    outputLatencyMs() {
      if (!this.ctx) return 0;
      let ms = 1000 * ((this.ctx.baseLatency || 0) + (this.ctx.outputLatency || 0));
      const track = this.stream && this.stream.getAudioTracks()[0];
      const input = track && track.getSettings ? track.getSettings().latency : undefined;
      if (typeof input === "number" && isFinite(input)) ms += 1000 * input;
      return ms;
    }

    measuredMs() {
      return this.delayMs === null ? null : this.delayMs + this.outputLatencyMs();
    }

    stats(msg) {
      const entry = {...msg, t: performance.now(), measured_ms: this.measuredMs(), in_page_ms: this.delayMs,
                     device_ms: this.outputLatencyMs(), worklet: this.worklet || null};
      this.history.push(entry);
      if (this.history.length > 3000) this.history.splice(0, this.history.length - 3000);
      this.last = entry;
      this.warn(this.warningText());
      this.render();
    }

    render(text) {
      const box = document.getElementById("va-live-stats");
      if (!box) return;
      if (text) { box.textContent = text; return; }
      if (this.state === "stopped") return;
      const s = this.last;
      const load = s.load === undefined ? "–" : fmt(s.load, 2);
      const compute = s.compute_ms > 0 ? ` + compute ${fmt(s.compute_ms)} ms` : "";
      box.textContent = `Latency ${fmt(this.measuredMs())} ms measured (algorithmic ${fmt(s.latency_ms)} ms` +
        `${compute}) · ` +
        `load ${load}${s.load > 1 ? " (cannot keep up)" : ""} · level: ${s.level || "–"}` +
        `${s.degraded ? " (degraded)" : ""} · gate ${s.gate_open === false ? "closed" : "open"} · ` +
        `${s.blocks ?? 0} blocks, ${s.dropped ?? 0} dropped`;
    }

    warn(message) {
      const box = document.getElementById("va-live-warning");
      if (!box) return;
      box.textContent = message || "";
      box.style.display = message ? "block" : "none";
    }

    meter(which, db) {
      const bar = document.getElementById(`va-live-${which}`);
      if (!bar) return;
      const pct = Math.max(0, Math.min(100, (db + 60) / 60 * 100));
      bar.style.width = `${pct}%`;
      bar.style.background = db > -3 ? "#dc2626" : db > -12 ? "#f59e0b" : "#22c55e";
    }

    record(seconds) {
      return new Promise((resolve, reject) => {
        if (!this.node || !this.ctx) { reject(new Error("Live is not running")); return; }
        const frames = Math.round(seconds * this.ctx.sampleRate);
        this.onRecording = (msg) => {
          this.onRecording = null;
          const delays = Array.from(msg.delays).filter((d) => isFinite(d)).sort((a, b) => a - b);
          resolve({rate: msg.rate, startFrame: msg.startFrame, mic: b64(msg.mic), played: b64(msg.played),
                   delayMedianMs: delays.length ? 1000 * delays[delays.length >> 1] / msg.rate : null,
                   baseLatency: this.ctx ? this.ctx.baseLatency || 0 : 0,
                   outputLatency: this.ctx ? this.ctx.outputLatency || 0 : 0});
        };
        this.node.port.postMessage({type: "record", frames});
      });
    }
  }

  window.voiceappLive = new Live();
})();
