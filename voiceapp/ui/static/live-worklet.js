// Voiceapp Live: the AudioWorklet that captures the microphone and plays the converted voice, on one frame clock.
//
// Capture: every render quantum (128 frames) of input goes to the socket worker (live-socket.js, through the port
// it was given) as {type: "mic", index, samples}, where index is the AudioContext frame of its first sample (the
// capture index the server echoes back); converted audio comes back on the same port as {type: "play"}.
// Playback: a ring buffer of converted samples, each run tagged with the capture index of its first sample. The
// delay of a sample played at frame F is F - index: measured here, on the same clock as the capture.
// Jitter buffer: over each window (250 ms) the lowest fill is watched; fill that never drained below the margin
// is surplus delay and is dropped (with a short crossfade), so playback never drifts behind. When the buffer runs
// dry it plays silence (the delay grows by that much) and the margin grows by what was missing, up to 80 ms (past
// that, gaps are heard rather than more delay); after a second without a starved sample it shrinks again each
// window by 2 ms or a tenth of what it has above the base margin, whichever is more, down to the base margin.
// Recorder (the benchmark's hook): {type: "record", frames} stores mic and played samples from the next quantum
// on and posts {type: "recording", startFrame, mic, played, delays} when full (delays: the measured delay in
// frames of each quantum's first played sample, NaN where playback starved).

class VoiceappLiveProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = (options && options.processorOptions) || {};
    this.rate = sampleRate;
    this.ring = new Float32Array(Math.round(this.rate * 6));
    this.readPos = 0;            // ring position of the next sample to play
    this.fill = 0;               // samples buffered
    this.readIndex = null;       // capture index of the sample at readPos (null: nothing buffered yet)
    this.writeIndex = null;      // capture index the next arriving sample should have
    this.baseMargin = Math.round(this.rate * (opts.marginMs ?? 5) / 1000);
    this.maxMargin = Math.round(this.rate * 0.08);
    this.marginFrames = this.baseMargin;
    this.windowFrames = Math.round(this.rate * 0.25);
    this.starvedInWindow = 0;
    this.calmWindows = 0;
    this.growth = opts.growth ?? 1.0;        // margin added per starved sample
    this.calmNeeded = opts.calmWindows ?? 4; // windows without starving before the margin shrinks ...
    this.shrink = Math.round(this.rate * (opts.shrinkMs ?? 2) / 1000);   // ... by this much a window, or by
    this.shrinkShare = opts.shrinkShare ?? 0.1;   // this share of the margin above the base, if more (a start-up
                                                  // stall's 80 ms margin is gone in ~3 s, not ~8 s)
    this.fade = 64;
    this.minFill = Infinity;
    this.windowLeft = this.windowFrames;
    this.trimmed = 0;
    this.starved = 0;
    this.delaySum = 0;
    this.delayCount = 0;
    this.inSq = 0;
    this.outSq = 0;
    this.levelFrames = 0;
    this.recording = null;
    this.socket = null;
    this.port.onmessage = (event) => this.onMessage(event.data, event.ports);
  }

  onMessage(msg, ports) {
    if (msg.type === "socket") {          // the port of the socket worker (live-socket.js): audio goes that way
      this.socket = ports[0];
      this.socket.onmessage = (event) => this.onMessage(event.data);
    } else if (msg.type === "play") {
      this.write(msg.index, msg.samples);
    } else if (msg.type === "flush") {
      this.fill = 0;
      this.readIndex = this.writeIndex = null;
    } else if (msg.type === "record") {
      this.recording = {frames: msg.frames, pos: 0, startFrame: null, quanta: 0,
                        mic: new Float32Array(msg.frames), played: new Float32Array(msg.frames),
                        delays: new Float32Array(Math.ceil(msg.frames / 128) + 1).fill(NaN)};
    }
  }

  write(index, samples) {
    if (this.writeIndex !== null && index !== this.writeIndex) {
      this.fill = 0;             // a new run (new session, or the server dropped a backlog): start from it
      this.readIndex = null;
    }
    if (this.readIndex === null) this.readIndex = index;
    const n = Math.min(samples.length, this.ring.length - this.fill);
    let pos = (this.readPos + this.fill) % this.ring.length;
    for (let i = 0; i < n; i++) {
      this.ring[pos] = samples[i];
      pos = pos + 1 === this.ring.length ? 0 : pos + 1;
    }
    this.fill += n;
    this.writeIndex = index + samples.length;
  }

  trim(excess) {
    // drop `excess` samples at the read head, crossfading the first `fade` samples kept into what was dropped
    const len = this.ring.length;
    const fade = Math.min(this.fade, this.fill - excess);
    for (let i = 0; i < fade; i++) {
      const w = (i + 0.5) / fade;
      const a = this.ring[(this.readPos + i) % len];
      const b = (this.readPos + excess + i) % len;
      this.ring[b] = a * (1 - w) + this.ring[b] * w;
    }
    this.readPos = (this.readPos + excess) % len;
    this.fill -= excess;
    this.readIndex += excess;
    this.trimmed += excess;
  }

  process(inputs, outputs) {
    const input = inputs[0] && inputs[0][0];
    const output = outputs[0][0];
    const frames = output.length;
    const frame = currentFrame;
    const mic = new Float32Array(frames);
    if (input) mic.set(input.subarray(0, frames));
    (this.socket || this.port).postMessage({type: "mic", index: frame, samples: mic}, [mic.buffer]);

    const len = this.ring.length;
    const delay = this.fill > 0 ? frame - this.readIndex : NaN;   // of this quantum's first played sample
    for (let i = 0; i < frames; i++) {
      if (this.fill > 0) {
        output[i] = this.ring[this.readPos];
        this.delaySum += frame + i - this.readIndex;
        this.delayCount += 1;
        this.readPos = this.readPos + 1 === len ? 0 : this.readPos + 1;
        this.fill -= 1;
        this.readIndex += 1;
      } else {
        output[i] = 0;
        if (this.readIndex !== null) { this.starved += 1; this.starvedInWindow += 1; }
      }
    }
    this.levels(input, output, frames);
    this.jitter(frames);
    this.record(input, output, frame, frames, delay);
    return true;
  }

  jitter(frames) {
    this.minFill = Math.min(this.minFill, this.fill);
    this.windowLeft -= frames;
    if (this.windowLeft > 0) return;
    this.adaptMargin();
    if (this.readIndex !== null && this.minFill > this.marginFrames && this.minFill !== Infinity) {
      this.trim(this.minFill - this.marginFrames);
    }
    this.port.postMessage({
      type: "stats", delayFrames: this.delayCount ? this.delaySum / this.delayCount : null,
      fill: this.fill, minFill: this.minFill === Infinity ? null : this.minFill,
      trimmed: this.trimmed, starved: this.starved, marginFrames: this.marginFrames, frame: currentFrame,
      frameRate: this.rate,
    });
    this.delaySum = this.delayCount = 0;
    this.minFill = Infinity;
    this.windowLeft = this.windowFrames;
  }

  adaptMargin() {
    const ms = Math.round(this.rate / 1000);
    if (this.starvedInWindow > 0) {
      const more = Math.max(Math.round(this.growth * this.starvedInWindow), ms);
      this.marginFrames = Math.min(this.maxMargin, this.marginFrames + more);
      this.calmWindows = 0;
    } else if (++this.calmWindows >= this.calmNeeded) {
      const less = Math.max(this.shrink, Math.round(this.shrinkShare * (this.marginFrames - this.baseMargin)));
      this.marginFrames = Math.max(this.baseMargin, this.marginFrames - less);
    }
    this.starvedInWindow = 0;
  }

  levels(input, output, frames) {
    for (let i = 0; i < frames; i++) {
      const x = input ? input[i] : 0;
      this.inSq += x * x;
      this.outSq += output[i] * output[i];
    }
    this.levelFrames += frames;
    if (this.levelFrames >= this.rate / 20) {   // 20 meter updates a second
      const db = (sq) => 10 * Math.log10(sq / this.levelFrames + 1e-12);
      this.port.postMessage({type: "levels", inDb: db(this.inSq), outDb: db(this.outSq)});
      this.inSq = this.outSq = this.levelFrames = 0;
    }
  }

  record(input, output, frame, frames, delay) {
    const rec = this.recording;
    if (!rec) return;
    if (rec.startFrame === null) rec.startFrame = frame;
    if (rec.quanta < rec.delays.length) rec.delays[rec.quanta++] = delay;
    const n = Math.min(frames, rec.frames - rec.pos);
    if (input) rec.mic.set(input.subarray(0, n), rec.pos);
    rec.played.set(output.subarray(0, n), rec.pos);
    rec.pos += n;
    if (rec.pos >= rec.frames) {
      this.port.postMessage({type: "recording", startFrame: rec.startFrame, rate: this.rate,
                             mic: rec.mic, played: rec.played, delays: rec.delays.subarray(0, rec.quanta)},
                            [rec.mic.buffer, rec.played.buffer]);
      this.recording = null;
    }
  }
}

registerProcessor("voiceapp-live", VoiceappLiveProcessor);
