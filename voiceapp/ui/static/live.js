// Voiceapp Live tab: microphone -> AudioWorklet -> WebSocket of raw PCM -> the app's server (voiceapp/live/server.py)
// -> WebSocket -> the same AudioWorklet -> speakers. The Live tab's buttons call window.voiceappLive.start/stop/
// update through Gradio's `js=` event handlers; the panel (voiceapp/ui/live_tab.py) shows what `render` writes.
//
// Measured latency = the delay the worklet measures between capturing a sample and playing its conversion (on the
// AudioContext's frame clock) + the browser's reported output latency (baseLatency + outputLatency) + the input
// track's reported latency where the browser gives one.
//
// Test hook (bench/live.py, tests/test_live_browser.py): voiceappLive.record(seconds) resolves to
// {rate, startFrame, mic, played, delayMedianMs} (base64 float32 of what the worklet captured and played,
// frame-aligned, and the median of the delay the page measured meanwhile);
// voiceappLive.history holds every stats message of the session.
(() => {
  if (window.voiceappLive) return;
  const here = document.currentScript ? document.currentScript.src : location.href;

  const b64 = (floats) => {
    const bytes = new Uint8Array(floats.buffer, floats.byteOffset, floats.byteLength);
    let text = "";
    for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(text);
  };
  const fmt = (x, digits = 0) => (x === null || x === undefined || !isFinite(x)) ? "–" : Number(x).toFixed(digits);

  class Live {
    constructor() {
      this.state = "stopped";
      this.sendFrames = 128;     // samples per socket message: one render quantum (2.7 ms at 48 kHz)
      this.jitter = {growth: 1.0, calmWindows: 8};   // the worklet's margin policy (see live-worklet.js)
      this.latencyHint = 0;      // the smallest audio buffer the device allows (bench: 22 vs 50 ms reported)
      this.marginMs = 5;         // the least jitter-buffer margin (the worklet widens it where playback starves)
      this.reset();
    }

    reset() {
      this.history = [];
      this.last = {};
      this.delayMs = null;
      this.pending = [];
      this.pendingFrames = 0;
      this.pendingIndex = null;
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
      return new Promise((resolve, reject) => {
        const url = new URL("../ws", here);
        url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
        const ws = new WebSocket(url.href);
        ws.binaryType = "arraybuffer";
        this.ws = ws;
        ws.onopen = () => { this.sendStart(); resolve(); };
        ws.onerror = () => reject(new Error("Cannot open the Live connection to the server."));
        ws.onclose = (event) => {
          if (this.ws !== ws) return;
          const why = event.code === 1008 ? " (refused: log in again, or too many Live sessions)" : "";
          if (this.state !== "stopped") this.fail(`The Live connection closed${why}.`);
        };
        ws.onmessage = (event) => this.fromServer(event.data);
      });
    }

    sendStart() {
      const s = {...this.settings, device_rate: this.ctx.sampleRate};
      this.ws.send(JSON.stringify({type: "start", settings: s}));
    }

    update(settings) {
      this.settings = settings;
      if (this.state === "stopped" || !this.ws || this.ws.readyState !== WebSocket.OPEN) return;
      this.state = "starting";
      this.render("Restarting with the new settings…");
      this.sendStart();
    }

    stop() {
      this.state = "stopped";
      const ws = this.ws;
      this.ws = null;
      if (ws) ws.close();
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
      if (msg.type === "mic") {
        this.queueMic(msg.index, msg.samples);
      } else if (msg.type === "stats") {
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

    queueMic(index, samples) {
      if (this.state !== "running" || !this.ws || this.ws.readyState !== WebSocket.OPEN) return;
      if (this.pendingIndex === null) this.pendingIndex = index;
      this.pending.push(samples);
      this.pendingFrames += samples.length;
      if (this.pendingFrames < this.sendFrames) return;
      const msg = new ArrayBuffer(8 + 4 * this.pendingFrames);
      new DataView(msg).setFloat64(0, this.pendingIndex, true);
      const body = new Float32Array(msg, 8);
      let at = 0;
      for (const part of this.pending) { body.set(part, at); at += part.length; }
      this.ws.send(msg);
      this.pending = [];
      this.pendingFrames = 0;
      this.pendingIndex = null;
    }

    fromServer(data) {
      if (typeof data !== "string") {
        const index = new DataView(data).getFloat64(0, true);
        const samples = new Float32Array(data, 8);
        this.node && this.node.port.postMessage({type: "play", index, samples}, [data]);
        return;
      }
      const msg = JSON.parse(data);
      if (msg.type === "error") {
        this.fail(msg.message);
      } else if (msg.type === "ready") {
        this.state = "running";
        this.pendingIndex = null;
        this.pending = [];
        this.pendingFrames = 0;
        this.node && this.node.port.postMessage({type: "flush"});
        this.stats(msg.stats || {});
      } else if (msg.type === "stats") {
        this.stats(msg);
      }
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
      box.textContent = `Latency ${fmt(this.measuredMs())} ms measured (algorithmic ${fmt(s.latency_ms)} ms) · ` +
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
