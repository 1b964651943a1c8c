// The page of `asr serve`: microphone (getUserMedia + AudioWorklet) or files, streamed as
// 16-bit PCM over the server's websocket (Vosk protocol); partial text updates live. The model's
// card (/info) heads the page; each finished utterance is one line, after a line naming its
// file (or the microphone). A line's time is where the model heard its first word: CTC places
// a word on one or two output frames (20 ms each for the built-in model), not over its length,
// so the page shows starts (to 0.1 s; each word's, to 0.01 s, on hovering the line), never
// durations.
'use strict';

const $ = (id) => document.getElementById(id);
const wsUrl = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws';
let info = null;      // the server's /info
let session = null;   // the live Session, if any
let mic = null;       // {media, ctx, node}

function setStatus(text, live = false) {
  $('status').textContent = text;
  $('status').classList.toggle('live', live);
}
function showError(text) { $('error').textContent = text; $('error').hidden = false; }
function clearError() { $('error').hidden = true; $('error').textContent = ''; }
function busy(on) {
  $('mic-start').disabled = on;
  $('file').disabled = on;
  $('mic-stop').disabled = !on || !mic;
}
function fmt(t) { return Number(t).toFixed(2); }

// "11 words: eight five ... <unk>", "28 characters: ␣ ' a b ...", "500 word pieces"
function vocabularyText(v) {
  if (!v) return '';
  const list = v.symbols ? ': ' + v.symbols.map((s) => (s === ' ' ? '␣' : s)).join(' ') : '';
  return `${v.size} ${v.kind}${list}`;
}

// The model card: its name (or the file's) and language, what it recognizes, then the facts
// the file gives (file name, vocabulary, rate, latency = one chunk + its look-ahead).
function showCard(i) {
  const card = i.card || {};
  $('model-name').textContent = card.name || i.model;
  $('model-language').textContent = card.language ? `(${card.language})` : '';
  $('model-description').textContent = card.description || `Recognizes ${vocabularyText(i.vocabulary)}.`;
  $('model-facts').textContent = [
    card.name ? i.model : null,
    card.description ? vocabularyText(i.vocabulary) : null,
    `${i.sample_rate} Hz`,
    `latency ${i.latency_s} s (chunks of ${i.chunk_s} s + ${i.right_context_s} s look-ahead)`,
  ].filter(Boolean).join(' · ');
}

// A line naming what the next results come from: a file, or the microphone.
function addSource(label) {
  const li = document.createElement('li');
  li.className = 'source';
  li.textContent = label;
  $('finals').appendChild(li);
  return li;
}

// One line per result: where its first word was heard, then the text.
function addFinal(reply) {
  if (!reply.text) return false;
  const li = document.createElement('li');
  li.className = 'result';
  const words = reply.result || [];
  if (words.length) {
    const at = document.createElement('span');
    at.className = 'at';
    at.textContent = `${Number(words[0].start).toFixed(1)} s`;
    li.append(at, ' ');  // a space, so that copied text reads "1.2 s four two"
    li.title = 'heard at: ' + words.map((w) => `${w.word} ${fmt(w.start)} s`).join(', ');
  }
  const text = document.createElement('span');
  text.className = 'text';
  text.textContent = reply.text;
  li.appendChild(text);
  $('finals').appendChild(li);
  return true;
}

function floatToInt16(f32) {
  const out = new Int16Array(f32.length);
  for (let i = 0; i < f32.length; i++) {
    const v = Math.round(f32[i] * 32768);
    out[i] = v > 32767 ? 32767 : (v < -32768 ? -32768 : v);
  }
  return out;
}

// One websocket stream: config, PCM messages, eof; resolves `done` with the final result.
class Session {
  constructor(rate, label) {
    this.label = label;
    this.source = null;  // its line in the transcript, once connected
    this.results = 0;    // result lines shown
    this.finished = false;
    this.failed = false;
    this.sent = 0;      // messages after the config (audio, then the eof)
    this.answered = 0;  // replies: the server answers each message once, in order
    this.ws = new WebSocket(wsUrl);
    this.ws.binaryType = 'arraybuffer';
    this.opened = new Promise((resolve, reject) => {
      this.ws.onopen = () => {
        this.source = addSource(label);
        this.ws.send(JSON.stringify({config: {sample_rate: rate, words: true}}));
        resolve();
      };
      this.ws.onerror = () => reject(new Error(`cannot reach the server at ${wsUrl}: is \`asr serve\` running?`));
    });
    this.done = new Promise((resolve) => { this.resolveDone = resolve; });
    this.ws.onmessage = (e) => this.onReply(JSON.parse(e.data));
    this.ws.onclose = (e) => {
      if (!this.finished && !this.failed) {
        showError(`The connection to the server was lost (code ${e.code}${e.reason ? ': ' + e.reason : ''}). ` +
                  'Is `asr serve` still running?');
        stopEverything('disconnected');
      }
      this.resolveDone(null);
    };
  }
  onReply(reply) {
    this.answered += 1;
    if (reply.error !== undefined) {
      this.failed = true;
      showError(`The server ended this stream: ${reply.error}`);
      stopEverything('stopped by the server');
      return;
    }
    if (reply.partial !== undefined) {
      $('partial').textContent = reply.partial;
      return;
    }
    $('partial').textContent = '';
    if (addFinal(reply)) this.results += 1;
    if (this.eofSent && this.answered === this.sent) {  // the reply to the eof: the final result
      this.finished = true;
      if (!this.results) this.source.textContent += ' (no words recognized)';
      this.resolveDone(reply);
      this.ws.close();
    }
  }
  send(pcm) {
    if (this.ws.readyState === WebSocket.OPEN && !this.eofSent) {
      this.ws.send(pcm.buffer);
      this.sent += 1;
    }
  }
  finish() {
    if (this.ws.readyState === WebSocket.OPEN && !this.eofSent) {
      this.eofSent = true;
      this.ws.send('{"eof" : 1}');
      this.sent += 1;
    }
    return this.done;
  }
}

function stopEverything(status) {
  if (mic) {
    mic.media.getTracks().forEach((t) => t.stop());
    mic.ctx.close();
    mic = null;
  }
  session = null;
  busy(false);
  setStatus(status);
}

async function startMic() {
  clearError();
  if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    showError('This page cannot use the microphone here: browsers allow it only on https:// or on ' +
              'http://localhost. Open it as http://localhost:PORT, or serve it over TLS (see docs/serving.md).');
    return;
  }
  let media;
  try {
    media = await navigator.mediaDevices.getUserMedia({audio: {channelCount: 1, echoCancellation: false,
                                                               noiseSuppression: false, autoGainControl: false}});
  } catch (e) {
    if (e.name === 'NotAllowedError' || e.name === 'SecurityError') {
      showError('Microphone access was refused. Allow it for this site (the icon in the address bar) and try again.');
    } else if (e.name === 'NotFoundError') {
      showError('No microphone was found.');
    } else {
      showError(`Cannot open the microphone: ${e.name}: ${e.message}`);
    }
    return;
  }
  const ctx = new AudioContext();
  mic = {media, ctx, node: null};
  busy(true);
  try {
    try {
      await ctx.audioWorklet.addModule('/static/capture-worklet.js');
    } catch (e) {
      throw new Error(`cannot load the capture module from the server (${e.message}): is \`asr serve\` running?`);
    }
    session = new Session(ctx.sampleRate, `microphone, from ${new Date().toLocaleTimeString()}`);
    await session.opened;
  } catch (e) {
    showError(e.message);
    stopEverything('idle');
    return;
  }
  const source = ctx.createMediaStreamSource(media);
  const node = new AudioWorkletNode(ctx, 'pcm-capture', {processorOptions: {blockMs: 100}});
  const mute = ctx.createGain();
  mute.gain.value = 0;  // keeps the graph pulling the worklet without playing the microphone back
  const s = session;
  node.port.onmessage = (e) => s.send(floatToInt16(e.data));
  source.connect(node).connect(mute).connect(ctx.destination);
  mic.node = node;
  $('mic-stop').disabled = false;
  setStatus(`listening (${ctx.sampleRate} Hz, sent as 16-bit PCM; the server resamples)`, true);
}

async function stopMic() {
  if (!mic || !session) return;
  const s = session;
  mic.node.port.onmessage = null;
  mic.media.getTracks().forEach((t) => t.stop());
  $('mic-stop').disabled = true;
  setStatus('finishing…');
  await s.finish();
  if (s.finished) stopEverything('done');
}

// Each file in turn: decoded in the page at the model's rate, streamed, its results under its name.
async function transcribeFiles(files) {
  clearError();
  if (!files.length) return;
  busy(true);
  for (let n = 0; n < files.length; n++) {
    const of = files.length > 1 ? `, ${n + 1} of ${files.length}` : '';
    if (!(await transcribeFile(files[n], of))) return;
  }
  stopEverything(files.length > 1 ? `done: ${files.length} files` : `done: ${files[0].name}`);
  $('file').value = '';
}

// One file; true when its final result came.
async function transcribeFile(file, of) {
  setStatus(`reading ${file.name}${of}…`);
  let buffer;
  try {
    const rate = info ? info.sample_rate : 16000;
    const decoder = new OfflineAudioContext(1, 1, rate);  // decodes (and resamples) to the model's rate
    buffer = await decoder.decodeAudioData(await file.arrayBuffer());
  } catch (e) {
    showError(`Cannot decode ${file.name} as audio (${e.message || e.name}).`);
    stopEverything('idle');
    return false;
  }
  let mono = buffer.getChannelData(0);
  if (buffer.numberOfChannels > 1) {
    mono = new Float32Array(buffer.length);
    for (let c = 0; c < buffer.numberOfChannels; c++) {
      const ch = buffer.getChannelData(c);
      for (let i = 0; i < ch.length; i++) mono[i] += ch[i] / buffer.numberOfChannels;
    }
  }
  const pcm = floatToInt16(mono);
  try {
    session = new Session(buffer.sampleRate, `${file.name} (${fmt(buffer.duration)} s)`);
    await session.opened;
  } catch (e) {
    showError(e.message);
    stopEverything('idle');
    return false;
  }
  const s = session;
  const realtime = $('realtime').checked;
  const step = Math.round(buffer.sampleRate * 0.2);
  const t0 = performance.now();
  setStatus(`streaming ${file.name} (${fmt(buffer.duration)} s${realtime ? ', real time' : ''}${of})`, true);
  for (let i = 0; i < pcm.length && !s.failed; i += step) {
    if (realtime) {
      const wait = t0 + (1000 * i) / buffer.sampleRate - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    while (s.ws.bufferedAmount > 1 << 20) await new Promise((r) => setTimeout(r, 10));
    s.send(pcm.subarray(i, i + step).slice());
  }
  if (s.failed) return false;
  setStatus(`finishing ${file.name}…`);
  await s.finish();
  return s.finished;
}

$('wsurl').textContent = wsUrl;
$('mic-start').onclick = startMic;
$('mic-stop').onclick = stopMic;
$('file').onchange = (e) => transcribeFiles(Array.from(e.target.files));
fetch('/info').then((r) => r.json()).then((i) => {
  info = i;
  showCard(i);
  if (i.streaming === false) {  // an offline graph: the OpenAI API only
    showError(`This server has an offline graph (${i.model}): it transcribes files sent to /v1/audio/transcriptions. ` +
              'Live streaming (the microphone and the files here) needs a streaming graph: asr export --streaming.');
    $('mic-start').disabled = true;
    $('file').disabled = true;
  }
}).catch(() => showError('The server does not answer (/info): is `asr serve` running?'));
