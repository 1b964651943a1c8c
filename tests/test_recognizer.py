"""One recognizer over every backend: asr.load_model(checkpoint or ONNX).transcribe, the same rules and results."""

import json

import numpy as np
import pytest
import torch
from conftest import FRONTEND, SR, TOKENIZER, run_without_torch, synth_utterance

import asr
from asr.audio import resample
from asr.decoding.greedy import greedy_ids
from asr.frontend import logmel
from asr.runtime import ModelError, OnlineRecognizer, OnnxBackend


def test_offline_recognizer_and_batch(models, wavs):
    path, model, _ = models.get("gru-offline")
    rec = asr.load_model(path)
    wave = synth_utterance("abc ca", np.random.default_rng(5))
    feats = torch.from_numpy(logmel(wave, FRONTEND))[None]
    with torch.no_grad():
        ref, n = model(feats, torch.tensor([feats.shape[1]]))
    one = rec.transcribe(wave)
    assert one.text == TOKENIZER.decode(greedy_ids(ref[0, : int(n[0])].numpy())) and one.final
    batch = rec.transcribe_batch([wavs["a"], wave, np.zeros(10, np.float32)])
    assert batch[0].name == wavs["a"] and batch[1].text == one.text and batch[2].text == ""
    assert rec.transcribe(resample(wave, SR, 16000), sample_rate=16000).text  # other rates are resampled
    with pytest.raises(ModelError, match="streaming graph"):
        OnnxBackend(models.get("gru-uni")[0])
    with pytest.raises(ModelError, match="offline graph"):
        OnlineRecognizer(path)


def test_runtime_runs_where_torch_cannot_be_imported(models, wavs):
    stream_path, offline_path = models.get("gru-uni")[0], models.get("gru-offline")[0]
    proc = run_without_torch("""
        import json, sys
        try:
            import torch
            raise SystemExit("torch was importable")
        except ImportError:
            pass
        import asr
        from asr.cli.stream import main
        texts = [asr.load_model(m).transcribe(sys.argv[3]).text for m in sys.argv[1:3]]
        assert main(["--model", sys.argv[1], sys.argv[3], "--no-partials"]) == 0
        print(json.dumps(texts))
    """, stream_path, offline_path, wavs["a"])
    texts = json.loads(proc.stdout.strip().splitlines()[-1])
    assert texts == [asr.load_model(stream_path).transcribe(wavs["a"]).text, asr.load_model(offline_path).transcribe(wavs["a"]).text]
