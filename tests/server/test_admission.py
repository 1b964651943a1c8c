"""asr.server.admission: the rule that admits a stream only while the decoding loops can take
it, on made-up measurements (no timing)."""

import pytest

from asr.server.admission import Admission, LoadSample


def test_cost_per_audio_second_times_the_streams_plus_one():
    """Rule 1: 100 streams sent 500 s of audio in the last 5 s, decoded in 3 s: 6 ms per audio
    second; 101 real-time streams would fill 0.606 of the loop. Streams whose audio has not
    come yet (a burst of connections) count in full."""
    rule = Admission(max_load=0.7)
    steady = LoadSample(busy_s=3.0, window_s=5.0, live=100, audio_s=500.0)
    assert rule.predicted_load(steady) == pytest.approx(0.006 * 101)
    assert rule.admits(steady)
    joined = LoadSample(busy_s=3.0, window_s=5.0, live=150, audio_s=500.0)  # 50 of them have sent nothing yet
    assert rule.predicted_load(joined) == pytest.approx(0.006 * 151)
    assert rule.refusal(joined) == ("decoding takes 6.0 ms per second of audio: 151 real-time streams would fill 91% "
                                    "of its time (limit 70%, --max-load)")
    # just under the limit, admitted; just over, refused
    assert rule.admits(LoadSample(busy_s=0.69 / 117 * 585, window_s=5.0, live=116, audio_s=585.0))
    assert not rule.admits(LoadSample(busy_s=0.71 / 117 * 585, window_s=5.0, live=116, audio_s=585.0))


def test_a_burst_is_admitted_in_measured_steps():
    """Rule 4: the cost measured at 40 real-time streams says little about 300; within a window
    at most 20 plus as many streams as were measured may join."""
    rule = Admission(max_load=0.7, growth=2.0, burst=20)
    assert rule.admits(LoadSample(busy_s=0.3, window_s=5.0, live=98, audio_s=200.0, joined=59))  # 40 measured: 60 may join
    assert rule.refusal(LoadSample(busy_s=0.3, window_s=5.0, live=100, audio_s=200.0, joined=60)) == (
        "streams are joining faster than their cost can be measured (60 joined in 5 s, 40 measured sending in real time)")
    # a fresh server: 20 at once, then the next once their audio is measured
    assert rule.admits(LoadSample(busy_s=0.0, window_s=1.0, live=19, joined=19))
    assert not rule.admits(LoadSample(busy_s=0.0, window_s=1.0, live=20, joined=20))
    # idle or paused streams do not hold newcomers back: only those joining count
    assert rule.admits(LoadSample(busy_s=0.0, window_s=5.0, live=150, audio_s=0.0, joined=0))


def test_the_load_is_spread_over_the_loops():
    rule = Admission(max_load=0.7)
    two = LoadSample(busy_s=6.0, window_s=5.0, live=200, loops=2, audio_s=1000.0)  # 6 ms per audio second
    assert rule.predicted_load(two) == pytest.approx(0.006 * 201 / 2)
    assert rule.admits(two)
    assert not rule.admits(LoadSample(busy_s=6.0, window_s=5.0, live=200, loops=1, audio_s=1000.0))


def test_a_client_faster_than_real_time_does_not_lock_others_out():
    """Two clients sending as fast as they can keep the loop 90% busy, but over 100 s of audio
    in 5 s: the cost per audio second is low, their replies are not timed (they wait for
    their own audio), so a real-time newcomer is admitted."""
    rule = Admission(max_load=0.7)
    assert rule.admits(LoadSample(busy_s=4.5, window_s=5.0, live=3, audio_s=110.0, reply_p95_s=0.03, loop_lag_s=0.005))


def test_slow_replies_or_a_stuck_step_refuse_whatever_the_prediction():
    """Rules 2 and 3: the outcome itself."""
    rule = Admission(max_load=0.7, max_reply_s=0.2, max_pending_s=0.5)
    light = LoadSample(busy_s=1.0, window_s=5.0, live=100, audio_s=500.0)
    assert rule.admits(light)
    slow = LoadSample(busy_s=1.0, window_s=5.0, live=100, audio_s=500.0, reply_p95_s=0.85)
    assert rule.refusal(slow) == ("replies take 850 ms inside the server, and messages wait 0 ms to be read "
                                  "(95th percentiles; limit 200 ms together)")
    assert rule.admits(LoadSample(busy_s=1.0, window_s=5.0, live=100, audio_s=500.0, reply_p95_s=0.15))
    late = LoadSample(busy_s=1.0, window_s=5.0, live=100, audio_s=500.0, reply_p95_s=0.15, loop_lag_s=0.3)
    assert rule.refusal(late) == ("replies take 150 ms inside the server, and messages wait 300 ms to be read "
                                  "(95th percentiles; limit 200 ms together)")
    stuck = LoadSample(busy_s=2.5, window_s=3.0, live=1, audio_s=0.1, oldest_pending_s=2.4)
    assert rule.refusal(stuck) == "a reply has been due for 2400 ms (limit 500 ms): decoding is behind"


def test_nothing_to_extrapolate_from_admits():
    rule = Admission(max_load=0.7, min_measured_s=2.0)
    assert rule.admits(LoadSample(busy_s=0.0, window_s=5.0, live=0, reply_p95_s=0.85, oldest_pending_s=9.0))  # nobody live
    assert rule.predicted_load(LoadSample(busy_s=1.0, window_s=1.0, live=10, audio_s=10.0)) is None  # too little history
    assert rule.predicted_load(LoadSample(busy_s=0.1, window_s=5.0, live=1, audio_s=0.1)) is None  # too little audio
    assert rule.admits(LoadSample(busy_s=0.1, window_s=5.0, live=1, audio_s=0.1))


@pytest.mark.parametrize("kw", [dict(max_load=0), dict(max_load=1.5), dict(min_measured_s=0), dict(max_reply_s=0),
                                dict(max_pending_s=-1), dict(growth=0.5), dict(burst=0)])
def test_bad_settings_are_refused(kw):
    with pytest.raises(ValueError):
        Admission(**kw)
