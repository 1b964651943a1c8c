"""``asr serve``: a streaming recognition server on the torch-free runtime (aiohttp).

- :mod:`asr.server.protocol`: the websocket protocol (Vosk's, plus float32 frames and
  phrase-list hotwords): parsing and validating messages, building replies.
- :mod:`asr.server.loop`: one decoding loop for every live stream: one batched onnxruntime
  call per step, in a worker thread, so the event loop only moves bytes.
- :mod:`asr.server.app`: the aiohttp application (websocket at ``/`` and ``/ws``, the page,
  ``/health``, ``/metrics``, ``/info``) and its limits (:class:`ServerConfig`).
- :mod:`asr.server.openai_api`: the OpenAI-compatible ``POST /v1/audio/transcriptions`` and
  ``GET /v1/models`` (uploads transcribed by the offline recognizer, long ones segment by segment).
- :mod:`asr.server.client`: the client (files, paced or as fast as possible, or a microphone),
  used by ``asr client`` and the load and soak tests (:mod:`asr.server.loadtest`).
- ``static/``: the browser page (microphone via AudioWorklet, or a file).
"""
