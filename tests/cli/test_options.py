"""asr.cli.options and the vocabulary of every command (docs/layout.md, "One flag vocabulary"):
help text on every option, none of the retired spellings, one meaning per flag, one endpoint
parser, and `asr-stream` the same command as `asr stream`."""

import argparse

import pytest

from asr import cli
from asr.cli.lm import build_parser as lm_parser
from asr.cli.options import add_endpoint_args, endpoint_config
from asr.cli.stream import main as stream_main
from asr.runtime.endpoint import EndpointConfig

RETIRED = ("--json", "--output-format", "--chunk-ms", "--block-ms", "--rate")


def _parsers():
    """(name, parser) for `asr`, every subcommand, every sub-subcommand (plot's kinds) and `asr lm`'s."""
    todo = [("asr", cli.build_parser()), ("asr lm", lm_parser())]
    while todo:
        name, parser = todo.pop(0)
        yield name, parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo += [(f"{name} {c}", p) for c, p in action.choices.items() if not (name == "asr" and c == "lm")]


PARSERS = dict(_parsers())


def _options(parser):
    return [a for a in parser._actions
            if not isinstance(a, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction))]


def test_the_walk_covers_every_command():
    assert {"asr stream", "asr transcribe", "asr align", "asr mic", "asr serve", "asr client", "asr calibrate", "asr synth",
            "asr plot curves", "asr plot stream", "asr lm build", "asr lm ppl"} <= set(PARSERS)


def test_every_option_has_help_text():
    missing = [f"{name}: {'/'.join(a.option_strings) or a.dest}" for name, p in PARSERS.items() for a in _options(p)
               if not a.help or a.help == argparse.SUPPRESS]
    assert missing == [], "options without help text:\n" + "\n".join(missing)


def test_no_retired_spelling_and_one_meaning_per_flag():
    flags = {(name, s): a for name, p in PARSERS.items() for a in _options(p) for s in a.option_strings}
    retired = sorted(f"{name}: {s}" for name, s in flags if s in RETIRED)
    assert retired == [], f"retired spellings ({', '.join(RETIRED)}): use --format json, --write, --piece-ms, --sample-rate, --out"
    for (name, s), a in flags.items():
        if s == "--format":  # what is printed on stdout; nothing else
            assert list(a.choices) == ["text", "json"] and a.default == "text", name
    for name in ("asr stream", "asr mic", "asr client", "asr plot stream"):
        assert (name, "--piece-ms") in flags, name
    for name in ("asr mic", "asr client", "asr serve", "asr synth"):
        assert (name, "--sample-rate") in flags, name
    for name in ("asr transcribe", "asr align"):
        assert (name, "--write") in flags and (name, "--output-dir") in flags, name


def test_endpoint_options_are_one_set():
    """mic, stream and serve: the same flags, help, defaults and parsing ('off' turns a rule off)."""
    def rules(name):
        return [(a.option_strings, a.help, a.default, a.type) for a in _options(PARSERS[name])
                if a.option_strings[:1] in (["--rule1"], ["--rule2"], ["--rule3"])]
    assert len(rules("asr stream")) == 3 and rules("asr stream") == rules("asr mic") == rules("asr serve")
    d = EndpointConfig()
    p = argparse.ArgumentParser()
    add_endpoint_args(p, no_endpoint=True)
    assert endpoint_config(p.parse_args([])) == d
    assert endpoint_config(p.parse_args(["--rule1", "off", "--rule2", "0.5", "--rule3", "None"])) == EndpointConfig(None, 0.5, None)
    assert endpoint_config(p.parse_args(["--no-endpoint"])) is None
    with pytest.raises(ValueError, match="--rule3 off"):
        endpoint_config(p.parse_args(["--rule3", "off"]), rule3_off=False)
    for bad in ("0", "-1", "soon"):
        with pytest.raises(SystemExit):
            p.parse_args(["--rule2", bad])


def test_serve_refuses_rule3_off_and_asr_stream_is_asr_stream(capsys):
    assert cli.main(["serve", "--rule3", "off"]) == 2
    assert "--rule3 off" in capsys.readouterr().err
    (sub,) = [a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert "stream" in sub.choices
    for argv in (["--help"], ["--json", "x.wav"]):
        with pytest.raises(SystemExit) as alias:
            stream_main(argv)
        out_alias = capsys.readouterr()
        with pytest.raises(SystemExit) as sub_command:
            cli.main(["stream", *argv])
        assert alias.value.code == sub_command.value.code and capsys.readouterr() == out_alias
    assert "unrecognized arguments: --json" in out_alias.err


def test_write_takes_several_formats(tmp_path):
    args = cli.build_parser().parse_args(["transcribe", "--write", "txt,srt,txt", "--output-dir", str(tmp_path), "a.wav"])
    assert args.write == ["txt", "srt", "txt"]
    from asr.cli.options import transcript_writers

    assert [type(w).__name__ for w in transcript_writers(args)] == ["TxtWriter", "SrtWriter"]
    assert len(transcript_writers(cli.build_parser().parse_args(["align", "--text", "x", "--write", "all", "a.wav"]))) == 5
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["transcribe", "--write", "txt,doc", "a.wav"])
