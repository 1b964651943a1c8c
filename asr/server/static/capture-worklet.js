// AudioWorklet: hands the microphone's samples (channel 0, float32 at the context's rate) to the
// page in blocks of about 100 ms; the page turns them into 16-bit PCM for the server.
class PcmCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.blockSize = Math.max(128, Math.round(sampleRate * ((options.processorOptions || {}).blockMs || 100) / 1000));
    this.buffer = new Float32Array(this.blockSize);
    this.filled = 0;
  }
  process(inputs) {
    const input = inputs[0];
    if (input && input[0]) {
      const samples = input[0];
      let i = 0;
      while (i < samples.length) {
        const n = Math.min(samples.length - i, this.blockSize - this.filled);
        this.buffer.set(samples.subarray(i, i + n), this.filled);
        this.filled += n;
        i += n;
        if (this.filled === this.blockSize) {
          this.port.postMessage(this.buffer.slice(0));
          this.filled = 0;
        }
      }
    }
    return true;
  }
}
registerProcessor('pcm-capture', PcmCapture);
