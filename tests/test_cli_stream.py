"""asr-stream: files streamed through an exported model as live sources."""

import json

import asr
from asr.cli.stream import main as stream_main


def test_asr_stream_cli(models, wavs, capsys):
    path, _, _ = models.get("gru-lc")
    rc = stream_main(["--model", path, wavs["a"], wavs["bad"], wavs["b"], "--chunk-ms", "30", "--no-endpoint"])
    out, err = capsys.readouterr()
    assert rc == 1
    lines = [line.split("\t") for line in out.strip().splitlines()]
    assert [p for p, _, _ in lines] == [wavs["a"], wavs["b"]]
    assert lines[0][2] == asr.load_model(path).transcribe(wavs["a"]).text
    assert all(len(se.split("-")) == 2 for _, se, _ in lines)
    assert f"error: {wavs['bad']}: cannot decode audio" in err
    assert f"{wavs['a']}\tpartial\t" in err

    rc = stream_main(["--model", path, wavs["a"], "--json", "--no-partials", "--rule2", "0.2"])
    out, err = capsys.readouterr()
    assert rc == 0 and err == ""
    objs = [json.loads(line) for line in out.strip().splitlines()]
    assert objs and all(set(o) == {"path", "text", "start", "end", "words"} for o in objs)
    assert all(set(w) == {"word", "start", "end"} for o in objs for w in o["words"])

    off = models.get("gru-offline")[0]
    rc = stream_main(["--model", off, wavs["a"], wavs["b"]])
    out, err = capsys.readouterr()
    assert rc == 0 and len(out.strip().splitlines()) == 2 and "partial" not in err

    assert stream_main(["--model", wavs["bad"], wavs["a"]]) == 2
    assert "cannot load as an ONNX model" in capsys.readouterr().err
