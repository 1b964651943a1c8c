// The page of `asr serve`: microphone (getUserMedia + AudioWorklet) or a file, streamed as
// 16-bit PCM over the server's websocket (Vosk protocol); partial text updates live, finished
// utterances are listed with their word times.
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

function addFinal(reply) {
  if (!reply.text) return;
  const li = document.createElement('li');
  const text = document.createElement('span');
  text.className = 'text';
  text.textContent = reply.text;
  li.appendChild(text);
  const words = reply.result || [];
  if (words.length) {
    const times = document.createElement('span');
    times.className = 'times';
    times.textContent = `${fmt(words[0].start)}–${fmt(words[words.length - 1].end)} s`;
    li.appendChild(times);
    const div = document.createElement('div');
    div.className = 'words';
    for (const w of words) {
      const span = document.createElement('span');
      span.className = 'word';
      span.textContent = `${w.word} ${fmt(w.start)}–${fmt(w.end)}`;
      div.appendChild(span);
    }
    li.appendChild(div);
  }
  $('finals').appendChild(li);
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
    this.finished = false;
    this.failed = false;
    this.sent = 0;      // messages after the config (audio, then the eof)
    this.answered = 0;  // replies: the server answers each message once, in order
    this.ws = new WebSocket(wsUrl);
    this.ws.binaryType = 'arraybuffer';
    this.opened = new Promise((resolve, reject) => {
      this.ws.onopen = () => {
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
    addFinal(reply);
    if (this.eofSent && this.answered === this.sent) {  // the reply to the eof: the final result
      this.finished = true;
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
    session = new Session(ctx.sampleRate, 'microphone');
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

async function transcribeFile(file) {
  clearError();
  if (!file) return;
  busy(true);
  setStatus(`reading ${file.name}…`);
  let buffer;
  try {
    const rate = info ? info.sample_rate : 16000;
    const decoder = new OfflineAudioContext(1, 1, rate);  // decodes (and resamples) to the model's rate
    buffer = await decoder.decodeAudioData(await file.arrayBuffer());
  } catch (e) {
    showError(`Cannot decode ${file.name} as audio (${e.message || e.name}).`);
    stopEverything('idle');
    return;
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
    session = new Session(buffer.sampleRate, file.name);
    await session.opened;
  } catch (e) {
    showError(e.message);
    stopEverything('idle');
    return;
  }
  const s = session;
  const realtime = $('realtime').checked;
  const step = Math.round(buffer.sampleRate * 0.2);
  const t0 = performance.now();
  setStatus(`streaming ${file.name} (${fmt(buffer.duration)} s${realtime ? ', real time' : ''})`, true);
  for (let i = 0; i < pcm.length && !s.failed; i += step) {
    if (realtime) {
      const wait = t0 + (1000 * i) / buffer.sampleRate - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    while (s.ws.bufferedAmount > 1 << 20) await new Promise((r) => setTimeout(r, 10));
    s.send(pcm.subarray(i, i + step).slice());
  }
  if (s.failed) return;
  setStatus('finishing…');
  await s.finish();
  if (s.finished) stopEverything(`done: ${file.name}`);
  $('file').value = '';
}

$('wsurl').textContent = wsUrl;
$('mic-start').onclick = startMic;
$('mic-stop').onclick = stopMic;
$('file').onchange = (e) => transcribeFile(e.target.files[0]);
fetch('/info').then((r) => r.json()).then((i) => {
  info = i;
  $('model').textContent = `model ${i.model}: ${i.sample_rate} Hz, chunks of ${i.chunk_s} s + ${i.right_context_s} s look-ahead`;
}).catch(() => showError('The server does not answer (/info): is `asr serve` running?'));
