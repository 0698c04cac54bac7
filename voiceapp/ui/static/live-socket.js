// Voiceapp Live: the WebSocket, in a dedicated Worker so that the audio path never waits for the page's main thread
// (layout, garbage collection, Gradio's own work). The AudioWorklet and this worker talk through a MessagePort:
// microphone quanta come in and go out on the socket; converted audio from the socket goes straight to the worklet.
// JSON messages from the server are passed on to the page. See live.js for the protocol's other end.
//
// From the page: {type: "open", url, sendFrames} with the worklet's port transferred; {type: "send", text};
// {type: "trace", on} (the benchmark's timing hook; "trace" with on=false returns what was recorded); {type: "close"}.
// To the page: {type: "open"} | {type: "text", text} | {type: "closed", code} | {type: "error"} |
// {type: "trace", rows}.

let ws = null;
let audio = null;
let sending = false;        // microphone audio goes out only while a session is ready (not while one loads)
let sendFrames = 128;
let pending = [];
let pendingFrames = 0;
let pendingIndex = null;
let trace = null;

function flushMic() {
  const msg = new ArrayBuffer(8 + 4 * pendingFrames);
  new DataView(msg).setFloat64(0, pendingIndex, true);
  const body = new Float32Array(msg, 8);
  let at = 0;
  for (const part of pending) { body.set(part, at); at += part.length; }
  ws.send(msg);
  pending = [];
  pendingFrames = 0;
  pendingIndex = null;
}

function fromWorklet(msg) {
  if (msg.type !== "mic" || !sending || !ws || ws.readyState !== WebSocket.OPEN) return;
  if (trace) trace.push([performance.now(), msg.index, 0]);
  if (pendingIndex === null) pendingIndex = msg.index;
  pending.push(msg.samples);
  pendingFrames += msg.samples.length;
  if (pendingFrames >= sendFrames) flushMic();
}

function fromServer(data) {
  if (typeof data !== "string") {
    const index = new DataView(data).getFloat64(0, true);
    if (trace) trace.push([performance.now(), index, 1]);
    audio.postMessage({type: "play", index, samples: new Float32Array(data, 8)}, [data]);
    return;
  }
  const kind = JSON.parse(data).type;
  if (kind === "ready") {
    sending = true;
    pending = [];
    pendingFrames = 0;
    pendingIndex = null;
    audio.postMessage({type: "flush"});
  } else if (kind === "error" || kind === "stopped") {
    sending = false;
  }
  postMessage({type: "text", text: data});
}

onmessage = (event) => {
  const msg = event.data;
  if (msg.type === "open") {
    audio = event.ports[0];
    audio.onmessage = (e) => fromWorklet(e.data);
    sendFrames = msg.sendFrames || sendFrames;
    ws = new WebSocket(msg.url);
    ws.binaryType = "arraybuffer";
    ws.onopen = () => postMessage({type: "open"});
    ws.onerror = () => postMessage({type: "error"});
    ws.onclose = (e) => postMessage({type: "closed", code: e.code});
    ws.onmessage = (e) => fromServer(e.data);
  } else if (msg.type === "send" && ws && ws.readyState === WebSocket.OPEN) {
    if (JSON.parse(msg.text).type === "start") sending = false;
    ws.send(msg.text);
  } else if (msg.type === "trace") {
    if (msg.on) { trace = []; } else { postMessage({type: "trace", rows: trace || []}); trace = null; }
  } else if (msg.type === "close") {
    sending = false;
    if (ws) ws.close();
    ws = null;
    close();
  }
};
