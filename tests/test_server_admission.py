"""asr.server.admission: the rule that admits a stream only while the decoding loops can take
it, on made-up measurements (no timing)."""

import pytest

from asr.server.admission import Admission, LoadSample


def test_admits_while_one_more_stream_fits_under_the_load_limit():
    rule = Admission(max_load=0.8)
    # 100 streams kept one loop busy 3.5 of the last 5 s: 0.7 now, 0.707 with one more
    assert rule.predicted_load(LoadSample(busy_s=3.5, window_s=5.0, live=100)) == pytest.approx(0.707)
    assert rule.admits(LoadSample(busy_s=3.5, window_s=5.0, live=100))
    # 4 streams at 0.7: a fifth of the same cost makes 0.875
    assert not rule.admits(LoadSample(busy_s=3.5, window_s=5.0, live=4))
    # just under the limit (0.59 * 4/3 = 0.787), admitted; just over it (0.813), refused
    assert rule.admits(LoadSample(busy_s=0.59 * 5.0, window_s=5.0, live=3))
    assert not rule.admits(LoadSample(busy_s=0.61 * 5.0, window_s=5.0, live=3))
    # saturated loops (busy all the time: replies already late) refuse everyone
    assert not rule.admits(LoadSample(busy_s=5.0, window_s=5.0, live=600))


def test_the_load_is_spread_over_the_loops():
    rule = Admission(max_load=0.8)
    sample = LoadSample(busy_s=7.0, window_s=5.0, live=200, loops=2)  # two loops, each 0.7 busy
    assert sample.load == pytest.approx(0.7)
    assert rule.admits(sample)
    assert not rule.admits(LoadSample(busy_s=7.0, window_s=5.0, live=200, loops=1))  # one loop: 1.4


def test_nothing_to_extrapolate_from_admits():
    rule = Admission(max_load=0.8, min_measured_s=2.0)
    assert rule.admits(LoadSample(busy_s=0.0, window_s=5.0, live=0))  # the first stream
    assert rule.predicted_load(LoadSample(busy_s=1.0, window_s=1.0, live=10)) is None  # too little history
    assert rule.admits(LoadSample(busy_s=1.0, window_s=1.0, live=10))


@pytest.mark.parametrize("kw", [dict(max_load=0), dict(max_load=1.5), dict(min_measured_s=0)])
def test_bad_settings_are_refused(kw):
    with pytest.raises(ValueError):
        Admission(**kw)


def test_streams_whose_audio_has_not_come_yet_count_in_full():
    """A burst of connections: 300 streams live, but only 100 have sent audio yet (100 s of
    audio decoded in the last 5 s, the loop busy 2 s of them). By time alone the load looks
    like 0.4; by decoding time per audio second (0.02) every live stream sending in real time
    makes 6.02: refused. With all 300 sending, the two estimates agree."""
    rule = Admission(max_load=0.8)
    burst = LoadSample(busy_s=2.0, window_s=5.0, live=300, audio_s=100.0)
    assert rule.predicted_load(burst) == pytest.approx(0.02 * 301)
    assert not rule.admits(burst)
    steady = LoadSample(busy_s=2.0, window_s=5.0, live=100, audio_s=500.0)  # 100 real-time streams: 0.004 per audio second
    assert rule.predicted_load(steady) == pytest.approx(0.4 * 101 / 100)
    assert rule.admits(steady)
    # one slow step over a little audio is no measure of the cost per audio second
    assert rule.admits(LoadSample(busy_s=0.1, window_s=5.0, live=1, audio_s=0.1))


def test_slow_replies_refuse_newcomers_whatever_the_prediction():
    """The outcome itself: replies over max_reply_s inside the server (p95) refuse, even where
    the load extrapolated from the cost looks fine (the cost grew faster than the load)."""
    rule = Admission(max_load=0.8, max_reply_s=0.2)
    light = LoadSample(busy_s=1.0, window_s=5.0, live=100, audio_s=500.0)
    assert rule.admits(light)
    slow = LoadSample(busy_s=1.0, window_s=5.0, live=100, audio_s=500.0, reply_p95_s=0.85)
    assert rule.refusal(slow) == ("replies take 850 ms inside the server, and messages wait 0 ms to be read "
                                  "(95th percentiles; limit 200 ms together)")
    assert rule.admits(LoadSample(busy_s=1.0, window_s=5.0, live=100, audio_s=500.0, reply_p95_s=0.15))
    # the event loop late: messages wait in the socket before the server sees them
    late = LoadSample(busy_s=1.0, window_s=5.0, live=100, audio_s=500.0, reply_p95_s=0.15, loop_lag_s=0.3)
    assert rule.refusal(late) == ("replies take 150 ms inside the server, and messages wait 300 ms to be read "
                                  "(95th percentiles; limit 200 ms together)")
    assert rule.admits(LoadSample(busy_s=0.0, window_s=5.0, live=0, reply_p95_s=0.85))  # nobody live: nothing to protect
    loaded = LoadSample(busy_s=3.5, window_s=5.0, live=4)
    assert rule.refusal(loaded) == "decoding the live streams (4) takes 70% of its time, one more would take 88% (limit 80%, --max-load)"
