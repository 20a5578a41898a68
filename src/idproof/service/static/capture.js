// idproof capture page: camera preview, live quality hints, the server's liveness challenge, the result.
// A plain ES module, no framework, no build. Nothing is stored on the device: no cookies, localStorage,
// sessionStorage or IndexedDB; the frames live in memory until they are sent, once, and are then dropped.
//
// Flow: GET /capture?s=TOKEN (this page) → "Start camera" → hints until the picture is usable → "I am ready"
// → POST /v1/capture/TOKEN/challenge → prompts one at a time while frames are taken from the video
// (canvas → JPEG, ~10 fps, with timestamps) → PUT /v1/capture/TOKEN/frames (multipart: the challenge token,
// the frames, their timestamps and the client MAC that binds them to the challenge nonce) → the decision.

const $ = (id) => document.getElementById(id);

const PROMPTS = {
  turn_left: "Turn your head to your left",
  turn_right: "Turn your head to your right",
  blink: "Blink your eyes",
  smile: "Smile",
  mouth_open: "Open your mouth",
};
const OUTCOMES = {
  accept: "Done: it is you. You can return to the service that sent you here.",
  reject: "We could not confirm it is you.",
  retry: "We could not complete the check. Please ask for a new link and try again.",
};

// --- quality hints: measured on a small copy of the video, every 250 ms ---------------------------------
// Brightness (mean luma in the oval) → "too dark" / "too bright"; change between two samples → "hold still";
// face size only where the browser has a face detector (Shape Detection API): no guessing otherwise.
const HINT = { dark: 55, bright: 205, still: 14 };

const state = {
  token: null,
  stream: null,
  video: null,
  small: null, // canvas for the quality hints
  prev: null, // previous luma sample
  quality: { ok: false, text: "" },
  hintTimer: 0,
  detector: null,
  detecting: false,
  faceHint: "",
  capturing: false,
};

function setState(name) {
  document.body.dataset.state = name;
}

function show(id) {
  for (const s of ["intro", "camera", "result"]) $(s).hidden = s !== id;
}

function fail(message) {
  stopCamera();
  setState("error");
  const e = $("error");
  e.textContent = message;
  e.hidden = false;
}

function stopCamera() {
  clearInterval(state.hintTimer);
  if (state.stream) for (const t of state.stream.getTracks()) t.stop();
  state.stream = null;
}

async function problemText(resp) {
  try {
    const p = await resp.json();
    return [p.detail, p.fix].filter(Boolean).join(" ");
  } catch {
    return `The server answered ${resp.status}.`;
  }
}

// --- camera and hints -------------------------------------------------------------------------------------

async function startCamera() {
  $("start").disabled = true;
  show("camera");
  setState("camera");
  if (!navigator.mediaDevices?.getUserMedia) {
    fail("This browser cannot use the camera here. Open the link in an up-to-date browser (the page needs HTTPS).");
    return;
  }
  try {
    state.stream = await navigator.mediaDevices.getUserMedia({
      audio: false,
      video: { facingMode: "user", width: { ideal: 640 }, height: { ideal: 480 } },
    });
  } catch (err) {
    fail(err && err.name === "NotAllowedError"
      ? "The camera is blocked. Allow camera access for this page in the browser settings, then reload the page."
      : "No camera could be started. Close other apps that use the camera, then reload the page.");
    return;
  }
  const video = (state.video = $("preview"));
  video.srcObject = state.stream;
  await video.play().catch(() => {});
  await new Promise((r) => (video.readyState >= 2 ? r() : video.addEventListener("loadeddata", r, { once: true })));
  state.small = document.createElement("canvas");
  state.small.width = 64;
  state.small.height = 48;
  if ("FaceDetector" in window) {
    try { state.detector = new window.FaceDetector({ fastMode: true, maxDetectedFaces: 2 }); } catch { state.detector = null; }
  }
  state.hintTimer = setInterval(updateHints, 250);
  updateHints();
  const begin = $("begin");
  begin.hidden = false;
  begin.focus();
}

function sampleLuma() {
  const v = state.video, c = state.small;
  const ctx = c.getContext("2d", { willReadFrequently: true });
  // the centre of the frame, where the oval is
  const sw = v.videoWidth * 0.6, sh = v.videoHeight * 0.8;
  ctx.drawImage(v, (v.videoWidth - sw) / 2, (v.videoHeight - sh) / 2, sw, sh, 0, 0, c.width, c.height);
  const px = ctx.getImageData(0, 0, c.width, c.height).data;
  const luma = new Float32Array(c.width * c.height);
  for (let i = 0, j = 0; i < px.length; i += 4, j++) luma[j] = 0.299 * px[i] + 0.587 * px[i + 1] + 0.114 * px[i + 2];
  return luma;
}

function detectFace() {
  if (!state.detector || state.detecting) return;
  state.detecting = true;
  state.detector.detect(state.video).then((faces) => {
    const w = state.video.videoWidth;
    if (faces.length === 0) state.faceHint = "Put your face inside the oval";
    else if (faces.length > 1) state.faceHint = "Only one person, please";
    else if (faces[0].boundingBox.width < 0.25 * w) state.faceHint = "Move closer";
    else if (faces[0].boundingBox.width > 0.75 * w) state.faceHint = "Move a little further away";
    else state.faceHint = "";
  }).catch(() => { state.detector = null; state.faceHint = ""; })
    .finally(() => { state.detecting = false; });
}

function updateHints() {
  if (!state.video || state.video.readyState < 2) return;
  const luma = sampleLuma();
  let mean = 0;
  for (const y of luma) mean += y;
  mean /= luma.length;
  let diff = 0;
  if (state.prev) {
    for (let i = 0; i < luma.length; i++) diff += Math.abs(luma[i] - state.prev[i]);
    diff /= luma.length;
  }
  state.prev = luma;
  detectFace();
  let text = "";
  if (mean < HINT.dark) text = "Too dark: find more light";
  else if (mean > HINT.bright) text = "Too bright: move away from the light";
  else if (state.faceHint) text = state.faceHint;
  else if (!state.capturing && diff > HINT.still) text = "Hold still";
  const ok = text === "";
  document.body.dataset.quality = ok ? "ok" : "poor";
  if (state.capturing) text = text || "Keep your face inside the oval";
  else text = text || "Good: keep your face inside the oval and press “I am ready”";
  if (text !== state.quality.text) $("hint").textContent = text; // aria-live: announce changes only
  state.quality = { ok, text };
}

// --- the challenge -------------------------------------------------------------------------------------------

async function begin() {
  const btn = $("begin");
  btn.disabled = true;
  btn.hidden = true;
  setState("challenge");
  let ch;
  try {
    const r = await fetch(`/v1/capture/${encodeURIComponent(state.token)}/challenge`, {
      method: "POST", credentials: "omit", cache: "no-store",
    });
    if (!r.ok) return fail(await problemText(r));
    ch = await r.json();
  } catch {
    return fail("The server cannot be reached. Check the connection and reload the page.");
  }
  let frames;
  try {
    frames = await runChallenge(ch);
  } catch (err) {
    return fail(`The capture failed: ${err.message || err}`);
  }
  stopCamera();
  await submit(ch, frames);
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, Math.max(0, ms)));
}

function toJpeg(canvas, quality) {
  return new Promise((resolve, reject) =>
    canvas.toBlob((b) => (b ? resolve(b) : reject(new Error("no JPEG"))), "image/jpeg", quality));
}

// The next video frame the camera delivers (requestVideoFrameCallback where the browser has it, so that no
// camera frame is taken twice; a timer elsewhere).
function nextVideoFrame(video, fallbackMs) {
  if ("requestVideoFrameCallback" in HTMLVideoElement.prototype) {
    return new Promise((resolve) => video.requestVideoFrameCallback(() => resolve()));
  }
  return sleep(fallbackMs);
}

// Show the prompts at their times and take frames from the video meanwhile, about one per
// frame_interval_ms (never the same camera frame twice). Timestamps are whole milliseconds since the first
// frame, from performance.now() (monotonic, not the wall clock), as the challenge's windows are.
async function runChallenge(ch) {
  const steps = ch.actions;
  const progress = $("progress");
  progress.max = steps.length;
  progress.value = 0;
  $("progress-row").hidden = false;
  const v = state.video;
  const scale = Math.min(1, ch.max_width / v.videoWidth);
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(v.videoWidth * scale);
  canvas.height = Math.round(v.videoHeight * scale);
  const ctx = canvas.getContext("2d");
  const frames = [];
  const interval = ch.frame_interval_ms;
  const quality = (ch.jpeg_quality ?? 90) / 100;
  state.capturing = true;
  let shown = -1;
  let t0 = null;
  let due = 0; // when the next frame is due; camera frames come every 16-70 ms, so "due" allows 20 ms early
  for (;;) {
    await nextVideoFrame(v, interval / 3);
    const now = performance.now();
    if (t0 === null) t0 = now;
    const t = now - t0;
    if (t > ch.duration_ms || frames.length >= ch.max_frames) break;
    if (t < due - 20) continue;
    due = Math.max(due + interval, t + interval / 2);
    // the prompt whose window has begun
    let i = shown;
    while (i + 1 < steps.length && t >= steps[i + 1].start_ms) i++;
    if (i !== shown) {
      shown = i;
      $("prompt").textContent = PROMPTS[steps[i].action] || steps[i].action;
      $("progress-label").textContent = `Step ${i + 1} of ${steps.length}`;
      progress.value = i + 1;
      document.body.dataset.step = String(i + 1);
    }
    ctx.drawImage(v, 0, 0, canvas.width, canvas.height);
    frames.push({ t_ms: Math.round(t), blob: await toJpeg(canvas, quality) });
  }
  state.capturing = false;
  $("prompt").textContent = "Thank you: checking…";
  progress.value = steps.length;
  return frames;
}

// --- the capture binding (MAC) ---------------------------------------------------------------------------------
// As idproof.liveness.binding computes it on the server:
//   msg = nonce (16 raw bytes) || for each frame in capture order: SHA-256(JPEG bytes) || uint64 BE(timestamp_ms)
//   mac = HMAC-SHA256(binding_key, msg), sent as 64 hex digits.

function b64urlToBytes(s) {
  const b64 = s.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (s.length % 4)) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

function hex(buf) {
  return Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function captureMac(bindingKeyB64, nonceB64, frameBytes, timestamps) {
  const nonce = b64urlToBytes(nonceB64);
  const msg = new Uint8Array(nonce.length + frameBytes.length * 40);
  msg.set(nonce, 0);
  const view = new DataView(msg.buffer);
  let o = nonce.length;
  for (let i = 0; i < frameBytes.length; i++) {
    msg.set(new Uint8Array(await crypto.subtle.digest("SHA-256", frameBytes[i])), o);
    view.setBigUint64(o + 32, BigInt(timestamps[i]), false);
    o += 40;
  }
  const key = await crypto.subtle.importKey("raw", b64urlToBytes(bindingKeyB64), { name: "HMAC", hash: "SHA-256" },
    false, ["sign"]);
  return hex(await crypto.subtle.sign("HMAC", key, msg));
}

// --- submit and result ------------------------------------------------------------------------------------------

async function submit(ch, frames) {
  setState("sending");
  $("hint").textContent = "Sending…";
  const bytes = await Promise.all(frames.map((f) => f.blob.arrayBuffer()));
  const timestamps = frames.map((f) => f.t_ms);
  const mac = await captureMac(ch.binding_key, ch.nonce, bytes, timestamps);
  const form = new FormData();
  form.append("challenge", ch.token);
  form.append("mac", mac);
  form.append("meta", JSON.stringify({ timestamps_ms: timestamps, sizes: bytes.map((b) => b.byteLength) }));
  form.append("frames", new Blob(bytes, { type: "application/octet-stream" }), "frames.bin");
  frames.length = 0;
  let r;
  try {
    r = await fetch(`/v1/capture/${encodeURIComponent(state.token)}/frames`, {
      method: "PUT", body: form, credentials: "omit", cache: "no-store",
    });
  } catch {
    return fail("The frames could not be sent. Check the connection and ask for a new link.");
  }
  if (!r.ok) return fail(await problemText(r));
  showResult(await r.json());
}

function showResult(d) {
  show("result");
  setState("result");
  document.body.dataset.outcome = d.outcome;
  $("outcome").textContent = OUTCOMES[d.outcome] || d.outcome;
  // one line per distinct message; the movements not seen are named after their prompts
  const items = new Map();
  for (const r of d.reasons || []) {
    const key = r.text;
    if (!items.has(key)) items.set(key, { text: r.text, reasons: [], missed: [] });
    const it = items.get(key);
    it.reasons.push(r.reason);
    const m = /^liveness:challenge_not_met:(.+)$/.exec(r.reason);
    if (m) it.missed.push(PROMPTS[m[1]] || m[1]);
  }
  $("reasons").replaceChildren(...[...items.values()].map((it) => {
    const li = document.createElement("li");
    li.textContent = it.missed.length ? `${it.text} Not seen: ${it.missed.join("; ")}.` : it.text;
    li.dataset.reason = it.reasons.join(" ");
    return li;
  }));
  $("result").focus();
}

// --- start ------------------------------------------------------------------------------------------------------

function main() {
  const params = new URLSearchParams(location.search);
  state.token = params.get("s");
  // the token is not left in the address bar (nor in the history entry)
  history.replaceState(null, "", location.pathname);
  if (!state.token) {
    fail("This link is incomplete. Ask for a new link.");
    return;
  }
  $("start").addEventListener("click", startCamera);
  $("begin").addEventListener("click", begin);
  $("start").focus();
}

main();
