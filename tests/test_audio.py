import tracemalloc

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio

from asr.audio import AudioError, StreamingResampler, load_audio, read_audio, resample


@pytest.mark.parametrize("fmt,ext", [("WAV", "wav"), ("FLAC", "flac"), ("OGG", "ogg"), ("MP3", "mp3")])
def test_formats_rates_channels_become_mono_at_target_rate(tmp_path, fmt, ext):
    sr = 22050
    t = np.arange(sr) / sr
    stereo = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 440 * t)], axis=1)
    path = tmp_path / f"x.{ext}"
    sf.write(path, stereo, sr, format=fmt)
    out = load_audio(path, 16000)
    assert out.dtype == np.float32 and out.ndim == 1
    assert abs(len(out) - 16000) <= 1200  # lossy codecs may pad a little
    # the tone survives: most energy near 440 Hz
    spec = np.abs(np.fft.rfft(out[:8000]))
    assert abs(np.argmax(spec) * 16000 / 8000 - 440) < 10


def test_stereo_is_averaged(tmp_path):
    left = np.full(800, 0.5, dtype=np.float32)
    right = np.zeros(800, dtype=np.float32)
    sf.write(tmp_path / "s.wav", np.stack([left, right], 1), 8000, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(tmp_path / "s.wav", 8000), 0.25, atol=1e-6)


def _tones(rate, n, freqs, phases):
    t = np.arange(n) / rate
    return 0.05 * np.sin(2 * np.pi * freqs[:, None] * t[None] + phases[:, None]).sum(0)


@pytest.mark.parametrize("orig,new", [(8000, 16000), (16000, 8000), (44100, 16000), (22050, 16000)])
def test_resample_matches_torchaudio(orig, new):
    # A band-limited signal (20 tones up to 80% of the lower Nyquist frequency), whose true samples
    # at the new rate are known. libsoxr and torchaudio's 6-zero-crossing Hann sinc use different
    # low-pass filters, so on full-band noise they differ near Nyquist by design (up to 0.78);
    # within the passband both must give the signal, soxr the closer of the two.
    rng = np.random.default_rng(0)
    freqs, phases = rng.uniform(50, 0.8 * min(orig, new) / 2, 20), rng.uniform(0, 2 * np.pi, 20)
    x = _tones(orig, orig // 2, freqs, phases).astype(np.float32)
    truth = _tones(new, new // 2, freqs, phases)
    ours = resample(x, orig, new)
    ref = torchaudio.functional.resample(torch.from_numpy(x), orig, new).numpy()
    assert ours.shape == ref.shape == truth.shape and ours.dtype == np.float32
    inner = slice(100, -100)  # both pad with zeros at the ends, where their filters differ most
    assert np.abs(ref - truth)[inner].max() < 1e-2  # torchaudio: measured 2.2e-3 .. 5.6e-3
    assert np.abs(ours - truth)[inner].max() < 5e-4  # soxr: measured 1.1e-7 .. 1.5e-4 (peak 0.6)
    np.testing.assert_allclose(ours, ref, atol=1.5e-2)  # measured 3.4e-3 .. 9.3e-3, at the ends


def _tone_peak_hz(samples, rate):
    spec = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return np.argmax(spec) * rate / len(samples)


# prime and extreme rates: the old kernel grew with rate / gcd (5.3 GiB for 44,101 -> 16,000)
ODD_RATES = [(44101, 16000), (4001, 8000), (1000, 16000), (384000, 16000), (16000, 384000), (383987, 1009)]


@pytest.mark.parametrize("orig,new", ODD_RATES)
def test_resample_any_rate_in_bounded_memory(orig, new):
    tone = 300.0
    x = (0.3 * np.sin(2 * np.pi * tone * np.arange(orig) / orig)).astype(np.float32)  # 1 s
    tracemalloc.start()
    try:
        out = resample(x, orig, new)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50e6, f"{orig} -> {new} Hz took {peak / 1e6:.0f} MB"  # measured at most 3.1 MB
    assert out.shape == (new,) and out.dtype == np.float32
    assert abs(_tone_peak_hz(out, new) - tone) <= 1.0
    assert abs(np.abs(out[new // 10 : -new // 10]).max() - 0.3) < 0.01  # neither lost nor aliased


def test_prime_rate_wav_loads(tmp_path):
    p = tmp_path / "prime.wav"
    sf.write(p, 0.3 * np.sin(2 * np.pi * 440 * np.arange(44101) / 44101), 44101, subtype="PCM_16")
    out = load_audio(p, 16000)
    assert out.shape == (16000,) and out.dtype == np.float32
    assert abs(_tone_peak_hz(out, 16000) - 440) <= 1.0


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="not found") as e:
        load_audio(tmp_path / "nope.wav", 16000)
    assert "nope.wav" in str(e.value)


def test_empty_file(tmp_path):
    p = tmp_path / "empty.wav"
    p.write_bytes(b"")
    with pytest.raises(AudioError, match="empty"):
        load_audio(p, 16000)


def test_corrupt_file(tmp_path):
    p = tmp_path / "corrupt.wav"
    p.write_bytes(b"RIFF\x00\x01garbage" * 10)
    with pytest.raises(AudioError, match="cannot decode") as e:
        load_audio(p, 16000)
    assert "corrupt.wav" in str(e.value)


def test_no_samples(tmp_path):
    p = tmp_path / "zero.wav"
    sf.write(p, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="no audio samples"):
        load_audio(p, 16000)


def test_nan_samples_rejected(tmp_path):
    p = tmp_path / "nan.wav"
    x = np.zeros(1000, dtype=np.float32)
    x[10] = np.nan
    sf.write(p, x, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN"):
        load_audio(p, 16000)


def test_directory_rejected(tmp_path):
    with pytest.raises(AudioError, match="directory"):
        load_audio(tmp_path, 16000)


def test_segment_by_offset_and_duration(tmp_path):
    p = tmp_path / "ramp.wav"
    x = (np.arange(16000) / 16000).astype(np.float32)  # 1 s ramp: sample value = time in s
    sf.write(p, x, 16000, subtype="FLOAT")
    seg = load_audio(p, 16000, offset=0.25, duration=0.5)
    assert len(seg) == 8000 and seg[0] == pytest.approx(0.25) and seg[-1] == pytest.approx(0.75 - 1 / 16000)
    assert len(load_audio(p, 16000, offset=0.75)) == 4000  # to the end of the file
    assert len(load_audio(p, 8000, offset=0.5, duration=0.25)) == 2000  # resampled after cutting
    np.testing.assert_array_equal(load_audio(p, 16000), x)  # no segment: the whole file, as before
    with pytest.raises(AudioError, match="after the end of the file"):
        load_audio(p, 16000, offset=2.0, duration=0.5)
    # absurd numbers are named errors, not an OverflowError from int(round(inf))
    with pytest.raises(AudioError, match="after the end of the file"):
        load_audio(p, 16000, offset=1e308, duration=0.5)
    with pytest.raises(AudioError, match="expected finite numbers >= 0"):
        load_audio(p, 16000, offset=float("inf"))
    assert len(load_audio(p, 16000, offset=0.5, duration=1e308)) == 8000  # to the end of the file


def test_unreadable_file_says_permission_denied(tmp_path):
    """libsndfile reports a refused open as "System error."; the file is opened in Python first,
    so the message says what happened. (Root can read anything: the refusal is simulated.)"""
    import builtins
    from unittest import mock

    path = tmp_path / "a.wav"
    sf.write(path, np.zeros(800, np.float32), 8000)
    real_open = builtins.open

    def refuse(file, *args, **kwargs):
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    with mock.patch("builtins.open", refuse), pytest.raises(AudioError, match=r"a\.wav: permission denied"):
        load_audio(path, 8000)


def test_standard_input_is_capped_and_read_in_blocks(monkeypatch):
    """`asr transcribe - < /dev/zero` once grew to 1.7 GB and ended in a MemoryError traceback."""
    import io
    import sys
    import types

    import asr.audio as audio

    class Endless(io.RawIOBase):
        reads = 0

        def readable(self):
            return True

        def read(self, n=-1):
            assert n is not None and 0 < n <= 1 << 20  # in blocks, never "everything"
            Endless.reads += 1
            return bytes(n)

    monkeypatch.setattr(audio, "MAX_STDIN_BYTES", 5 << 20)
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=Endless()))
    with pytest.raises(AudioError, match=r"<stdin>: standard input is longer than 5242880 bytes .*save it to a file"):
        load_audio("-", 16000)
    assert Endless.reads == 6  # stopped at the cap

    buf = io.BytesIO()
    sf.write(buf, np.linspace(-0.5, 0.5, 8000).astype(np.float32), 8000, format="WAV", subtype="FLOAT")
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(buf.getvalue())))
    np.testing.assert_allclose(load_audio("-", 8000), np.linspace(-0.5, 0.5, 8000), atol=1e-7)


def _cut_wav(tmp_path, name="half.wav", keep=0.5):
    p = tmp_path / "whole.wav"
    sf.write(p, (0.3 * np.sin(np.arange(16000) / 5)).astype(np.float32), 16000, subtype="PCM_16")
    data = p.read_bytes()
    cut = tmp_path / name
    cut.write_bytes(data[: int(len(data) * keep)])
    return p, cut


def test_a_wav_cut_short_is_read_with_a_warning_naming_it(tmp_path, recwarn):
    """A WAV cut in half was transcribed with no word of it."""
    from asr.audio import AudioWarning, audio_blocks

    whole, cut = _cut_wav(tmp_path)
    assert len(load_audio(whole, 16000)) == 16000 and not [w for w in recwarn if w.category is AudioWarning]
    with pytest.warns(AudioWarning, match=rf"{cut}: the WAV header declares 32000 bytes of audio but the file holds "
                                          r"15978 \(50%\): the file looks cut short"):
        assert len(load_audio(cut, 16000)) == 7989
    with pytest.warns(AudioWarning, match="cut short"):
        audio_blocks(str(cut), 16000)
    # a stream written before its length was known (data size 0xFFFFFFFF) is not a truncation
    data = bytearray(whole.read_bytes())
    i = data.find(b"data")
    data[i + 4: i + 8] = b"\xff\xff\xff\xff"
    streamed = tmp_path / "streamed.wav"
    streamed.write_bytes(bytes(data))
    recwarn.clear()
    assert len(load_audio(streamed, 16000)) == 16000 and not [w for w in recwarn if w.category is AudioWarning]


def test_absurd_and_clipped_levels_warn(tmp_path, recwarn):
    """Float samples scaled by 1e30 once gave empty text with no word of why."""
    from asr.audio import AudioWarning, audio_blocks, check_level, read_input

    x = (0.3 * np.sin(np.arange(16000) / 5)).astype(np.float32)
    check_level(x, "quiet")
    check_level(np.clip(3 * x, -0.5, 0.5), "limited below full scale")
    assert not [w for w in recwarn if w.category is AudioWarning]
    with pytest.warns(AudioWarning, match=r"loud: peak level 3e\+29 is far outside the nominal \[-1, 1\]"):
        read_input(x * 1e30, 16000, 16000, "loud")
    p = tmp_path / "loud.wav"
    sf.write(p, x * 1e30, 16000, subtype="FLOAT")
    with pytest.warns(AudioWarning, match=rf"{p}: peak level 3e\+29"):
        read_input(str(p), None, 16000, "x")
    with pytest.warns(AudioWarning, match=rf"{p}: peak level 3e\+29"):
        list(audio_blocks(str(p), 16000, block_s=0.25))
    with pytest.warns(AudioWarning, match=r"clipped: [0-9.]+% of the samples are at full scale \(clipped\)"):
        check_level(np.clip(5 * x, -1, 1), "clipped")


def test_an_array_without_its_rate_warns(recwarn):
    """A 44.1 kHz array given without sample_rate was taken to be at the model's rate: ''."""
    from asr.audio import AudioWarning, read_input

    x = (0.3 * np.sin(np.arange(44100) / 5)).astype(np.float32)
    with pytest.warns(AudioWarning, match=r"input 0: an array without sample_rate is taken to be at the model's "
                                          r"rate, 16000 Hz: pass sample_rate="):
        read_input(x, None, 16000, "input 0")
    recwarn.clear()
    assert read_input(x, 44100, 16000, "input 0")[0].size == 16000
    assert not [w for w in recwarn if w.category is AudioWarning]


@pytest.mark.parametrize("file_rate,rate", [(16000, 32000), (16000, 8000), (8000, None)])
def test_blocks_duration_is_the_input_length_at_any_output_rate(tmp_path, file_rate, rate):
    """A 3 s file is 3 s whatever rate it is read at (the long-form switch reads this), and the
    blocks hold 3 s of samples at the output rate."""
    from asr.audio import AudioBlocks

    x = (0.1 * np.sin(2 * np.pi * 300 * np.arange(3 * file_rate) / file_rate)).astype(np.float32)
    path = tmp_path / "three.wav"
    sf.write(path, x, file_rate, subtype="FLOAT")
    out_rate = rate or file_rate
    for blocks in (AudioBlocks(path, rate, block_s=1.0), AudioBlocks(x, rate, block_s=1.0, sample_rate=file_rate)):
        assert blocks.duration == pytest.approx(3.0) and blocks.rate == out_rate and blocks.input_rate == file_rate
        sizes = [b.size for b in blocks]
        assert abs(sum(sizes) - 3 * out_rate) <= 2
        assert len(sizes) >= 3 and max(sizes) <= 1.25 * out_rate  # blocks of about block_s seconds at the output rate


def test_each_refusal_names_the_file_and_says_exactly_why(tmp_path):
    sf.write(tmp_path / "one_second.wav", np.zeros(8000, np.float32), 8000)
    sf.write(tmp_path / "header_only.wav", np.zeros(0, np.float32), 8000)
    x = np.zeros(1000, np.float32)
    x[[3, 5, 7]] = [np.nan, np.inf, -np.inf]
    sf.write(tmp_path / "nan.wav", x, 8000, subtype="FLOAT")
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "one_byte.wav").write_bytes(b"R")
    (tmp_path / "folder.wav").mkdir()
    cases = [
        ("missing.wav", {}, "file not found"),
        ("folder.wav", {}, "is a directory, not an audio file"),
        ("empty.wav", {}, "file is empty (0 bytes)"),
        ("header_only.wav", {}, "contains no audio samples"),
        ("nan.wav", {}, "3 sample(s) are NaN or infinite"),
        ("one_second.wav", dict(offset=1.0), "segment starts at 1 s, after the end of the file (1 s)"),
        ("one_second.wav", dict(offset=2.5, duration=0.5), "segment starts at 2.5 s, after the end of the file (1 s)"),
    ]
    for name, segment, why in cases:
        path = str(tmp_path / name)
        with pytest.raises(AudioError) as err:
            read_audio(path, **segment)
        assert (err.value.source, err.value.reason, str(err.value)) == (path, why, f"{path}: {why}"), name
    with pytest.raises(AudioError, match=r"one_byte\.wav: cannot decode audio \("):  # one byte is not "empty"
        read_audio(tmp_path / "one_byte.wav")
    with pytest.raises(AudioError, match=r"^-: a segment \(offset/duration\) cannot be read from standard input$"):
        read_audio("-", offset=1.0)


def test_read_audio_gives_float32_at_the_file_rate_whole_or_in_part(tmp_path):
    p = tmp_path / "pcm16.wav"
    x = (np.arange(16000) % 200 - 100).astype(np.int16) * 100
    sf.write(p, x, 16000, subtype="PCM_16")
    for segment, n in (({}, 16000), (dict(duration=0.5), 8000), (dict(offset=0.0, duration=0.25), 4000),
                       (dict(offset=0.75), 4000)):
        samples, rate = read_audio(p, **segment)
        assert samples.dtype == np.float32 and samples.shape == (n,) and rate == 16000, segment
        start = int(segment.get("offset", 0) * 16000)
        np.testing.assert_allclose(samples, x[start: start + n] / 32768.0, atol=1e-7)


def test_array_input_rules():
    from asr.audio import as_samples

    pcm16 = np.array([0, 16384, -32768, 32767], np.int16)
    got = as_samples(pcm16, "x")
    assert got.dtype == np.float32 and got.tolist() == [0, 0.5, -1, np.float32(32767 / 32768)]
    pcm32 = np.array([0, 2**30, -2**31], np.int32)
    got = as_samples(pcm32, "x")
    assert got.dtype == np.float32 and got.tolist() == [0, 0.5, -1]
    for dtype in (np.float16, np.float32, np.float64):
        got = as_samples(np.array([0.25, -0.5], dtype), "x")
        assert got.dtype == np.float32 and got.flags.c_contiguous and got.tolist() == [0.25, -0.5]
    assert as_samples(np.arange(6, dtype=np.float32)[::2], "x").flags.c_contiguous  # a strided view is copied
    refusals = [
        (np.array([1, 2], np.uint8), "samples of type uint8 are not accepted: give float32/float64 values in [-1, 1], "
                                     "or int16/int32 PCM"),
        (np.zeros((2, 3), np.float32), "expected a 1-D array of mono samples, got shape (2, 3) (mix channels down "
                                       "first, e.g. samples.mean(axis=1))"),
        (np.zeros(0, np.float32), "no samples"),
        (np.array([0.0, np.nan, np.inf], np.float32), "2 sample(s) are NaN or infinite"),
    ]
    for samples, why in refusals:
        with pytest.raises(AudioError) as err:
            as_samples(samples, "stream 7")
        assert (err.value.source, err.value.reason) == ("stream 7", why)
    assert as_samples(np.zeros(0, np.int16), "x", allow_empty=True).size == 0


def test_sample_rates_are_positive_whole_numbers():
    from asr.audio import check_rate

    assert check_rate(16000, "x") == 16000 and check_rate(8000.0, "x") == 8000 and check_rate(np.int64(44100), "x") == 44100
    assert isinstance(check_rate(8000.0, "x"), int)
    for bad in (0, -8000, 8000.5, float("inf"), float("nan"), True, np.bool_(True), "16000", None):
        with pytest.raises(AudioError) as err:
            check_rate(bad, "stream 7")
        assert str(err.value) == f"stream 7: sample rate must be a whole number of Hz in 1..384000, got {bad!r}"


def test_read_input_takes_a_file_at_its_own_rate_and_an_array_at_the_rate_given(tmp_path):
    from asr.audio import read_input

    x = (0.1 * np.sin(2 * np.pi * 300 * np.arange(8000) / 8000)).astype(np.float32)
    path = tmp_path / "tone.wav"
    sf.write(path, x, 8000, subtype="FLOAT")
    samples, name = read_input(path, 44100, 16000, "ignored")  # a file's own rate wins over sample_rate
    assert name == str(path) and samples.dtype == np.float32 and abs(samples.size - 16000) <= 1
    samples, name = read_input(x, 8000, 16000, "array 3")
    assert name == "array 3" and abs(samples.size - 16000) <= 1
    np.testing.assert_allclose(samples, load_audio(path, 16000), atol=1e-4)  # the same resampling
    same, _ = read_input(x, 16000, 16000, "a")
    np.testing.assert_array_equal(same, x)
    with pytest.raises(AudioError, match="^array 3: sample rate must be a whole number of Hz in 1..384000"):
        read_input(x, 0, 16000, "array 3")


def test_blocks_give_the_input_exactly_and_refuse_with_the_input_named(tmp_path):
    from asr.audio import AudioBlocks

    x = (0.1 * np.sin(np.arange(20000) / 7.0)).astype(np.float32)
    path = tmp_path / "x.wav"
    sf.write(path, x, 8000, subtype="FLOAT")
    for blocks in (AudioBlocks(x, sample_rate=8000, block_s=0.5), AudioBlocks(x, rate=8000, block_s=0.5),
                   AudioBlocks(path, block_s=0.5), AudioBlocks(path, 8000, block_s=0.5)):
        got = list(blocks)
        assert [b.size for b in got[:2]] == [4000, 4000] and all(b.dtype == np.float32 for b in got)
        np.testing.assert_array_equal(np.concatenate(got), x)  # no sample lost, none changed
        np.testing.assert_array_equal(np.concatenate(list(blocks)), x)  # a second pass reads it again
    sf.write(tmp_path / "header_only.wav", np.zeros(0, np.float32), 8000)
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF\x00\x01garbage" * 10)
    y = x.copy()
    y[12345] = np.nan
    sf.write(tmp_path / "nan.wav", y, 8000, subtype="FLOAT")
    cases = [
        (lambda: AudioBlocks(x, name="item 4"), "item 4: an array needs its sample rate"),
        (lambda: AudioBlocks(y, sample_rate=8000, name="item 5"), "item 5: 1 sample(s) are NaN or infinite"),
        (lambda: AudioBlocks(x, sample_rate=0, name="item 6"), "item 6: sample rate must be a whole number of Hz in 1..384000, got 0"),
        (lambda: AudioBlocks(tmp_path / "header_only.wav"), f"{tmp_path / 'header_only.wav'}: contains no audio samples"),
        (lambda: list(AudioBlocks(tmp_path / "nan.wav")), f"{tmp_path / 'nan.wav'}: 1 sample(s) are NaN or infinite"),
    ]
    for make, message in cases:
        with pytest.raises(AudioError) as err:
            make()
        assert str(err.value) == message
    with pytest.raises(AudioError, match=r"corrupt\.wav: cannot decode audio \("):
        AudioBlocks(tmp_path / "corrupt.wav")
    assert AudioBlocks(x, sample_rate=8000).name == "input 0"
    with pytest.raises(ValueError, match="^block_s must be positive, got 0$"):
        AudioBlocks(x, sample_rate=8000, block_s=0)
    with pytest.raises(AudioError, match=r"header_only\.wav: contains no audio samples from 0 s$"):
        read_audio(tmp_path / "header_only.wav", duration=1.0)


def test_pipes_are_refused_and_standard_input_is_read(tmp_path, monkeypatch):
    import io
    import os
    import sys
    import types

    fifo = tmp_path / "fifo.wav"
    os.mkfifo(fifo)
    with pytest.raises(AudioError) as err:
        read_audio(fifo)
    assert str(err.value) == f"{fifo}: is a pipe (FIFO): to read a stream, give '-' and redirect it to standard input"
    x = (0.1 * np.sin(np.arange(800) / 3.0)).astype(np.float32)
    wav = io.BytesIO()
    sf.write(wav, x, 8000, format="WAV", subtype="FLOAT")
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(wav.getvalue())))
    samples, rate = read_audio("-")
    assert rate == 8000
    np.testing.assert_array_equal(samples, x)
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(b"")))
    with pytest.raises(AudioError, match=r"^<stdin>: standard input is empty$"):
        read_audio("-")
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(b"not audio")))
    with pytest.raises(AudioError, match=r"^<stdin>: cannot decode audio"):
        read_audio("-")


def test_other_files_that_are_not_audio_say_what_they_are(tmp_path):
    from asr.audio import audio_blocks, read_input

    with pytest.raises(AudioError, match=r"^/dev/null: is not a regular file: to read a stream, give '-'"):
        read_audio("/dev/null")
    long_name = str(tmp_path / ("x" * 300 + ".wav"))
    with pytest.raises(AudioError, match=r"xxx\.wav: cannot access \(File name too long\)$"):
        read_audio(long_name)
    with pytest.raises(AudioError, match=r"^array 9: expected a 1-D array of mono samples"):
        read_input(np.zeros((2, 2), np.float32), 8000, 8000, "array 9")
    sf.write(tmp_path / "one.wav", np.full(1, 0.5, np.float32), 8000, subtype="FLOAT")
    assert [b.tolist() for b in audio_blocks(tmp_path / "one.wav")] == [[0.5]]  # one sample is audio
    blocks = audio_blocks(np.zeros(100, np.float32), 16000, 0.25, 8000, "item 2")
    assert (blocks.name, blocks.rate, blocks.input_rate, blocks.block_frames) == ("item 2", 16000, 8000, 2000)


# --- The streaming resampler: the same samples as resampling the whole signal, emitted as they come, in bounded memory. ---

def _pieces(rng, n):
    """Piece sizes: mostly tiny (0-50 samples), sometimes large."""
    out, i = [], 0
    while i < n:
        k = int(rng.integers(0, 50)) if rng.random() < 0.7 else int(rng.integers(300, 5000))
        out.append((i, min(n, i + k)))
        i += k
    return out


@pytest.mark.parametrize(
    "orig,new", [(16000, 8000), (8000, 16000), (44100, 16000), (22050, 8000), (8000, 8000), (48000, 44100), (44101, 16000), (4001, 8000)]
)
def test_streaming_resampler_matches_whole_signal(orig, new, rng):
    for n in (int(1.1 * orig), 7, 0):  # long, shorter than the filter, empty
        x = rng.standard_normal(n).astype(np.float32) * 0.3
        r = StreamingResampler(orig, new)
        got = np.concatenate([r.accept(x[a:b]) for a, b in _pieces(rng, n)] + [r.flush()])
        want = resample(x, orig, new)
        assert got.shape == want.shape, (n, got.shape, want.shape)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)  # measured: bit-identical (0.0)


@pytest.mark.parametrize("orig,new,max_lag_s", [(16000, 8000, 0.15), (48000, 16000, 0.06), (44101, 16000, 0.06)])
def test_streaming_resampler_emits_as_it_goes(orig, new, max_lag_s, rng):
    # libsoxr's filter delay: 10 ms pieces; measured lag 115, 37 and 40 ms
    r = StreamingResampler(orig, new)
    x, piece, lags = rng.standard_normal(orig).astype(np.float32), orig // 100, []
    for i in range(0, orig, piece):
        r.accept(x[i : i + piece])
        lags.append((i + piece) / orig - r.num_out / new)
    assert max(lags) < max_lag_s and r.num_out > 0
    with pytest.raises(ValueError, match="positive"):
        StreamingResampler(0, 8000)


@pytest.mark.parametrize("orig,new", [(44101, 16000), (4001, 8000), (384000, 16000), (1000, 16000)])
def test_streaming_resampler_any_rate_in_bounded_memory(orig, new, rng):
    tone = 300.0
    x = (0.3 * np.sin(2 * np.pi * tone * np.arange(orig) / orig)).astype(np.float32)  # 1 s
    tracemalloc.start()
    try:
        r = StreamingResampler(orig, new)
        out = np.concatenate([r.accept(x[a:b]) for a, b in _pieces(rng, orig)] + [r.flush()])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50e6, f"{orig} -> {new} Hz took {peak / 1e6:.0f} MB"  # measured at most 0.2 MB
    assert out.shape == (new,) and out.dtype == np.float32
    spec = np.abs(np.fft.rfft(out * np.hanning(new)))
    assert abs(np.argmax(spec) - tone) <= 1.0  # 1 s of output: bin k is k Hz
