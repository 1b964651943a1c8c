"""Endpoint rules, one at a time."""

import numpy as np
import pytest

from asr.runtime import EndpointConfig, EndpointDetector, detect_endpoint


def _detector(**rules):
    return EndpointDetector(EndpointConfig(**rules), frame_shift_s=0.1)


def test_endpoint_rule1_silence_without_speech():
    d = _detector(rule1=0.5, rule2=0.3, rule3=None)
    d.accept(np.zeros(4, int))
    assert d.check() is None
    d.accept(np.zeros(1, int))
    assert d.check() == 1
    d.reset()
    assert d.check() is None and d.num_frames == 0


def test_endpoint_rule2_trailing_silence_after_speech():
    d = _detector(rule1=0.5, rule2=0.3, rule3=None)
    d.accept(np.array([0, 0, 0, 2, 2, 0, 0]))  # speech, then 2 blank frames
    assert d.has_speech and d.trailing_blanks == 2 and d.check() is None
    d.accept(np.array([0]))
    assert d.check() == 2
    d = _detector(rule1=0.5, rule2=0.3, rule3=None)
    d.accept(np.array([0, 0, 0, 0, 3]))  # 4 blanks then speech: rule 1 no longer applies
    d.accept(np.array([0, 0]))
    assert d.check() is None
    d.accept(np.array([0, 4, 0, 0]))  # speech resets the trailing count
    assert d.trailing_blanks == 2 and d.check() is None


def test_endpoint_rule3_max_length_and_rules_off():
    d = _detector(rule1=None, rule2=None, rule3=1.0)
    for _ in range(9):
        d.accept(np.array([1]))
        assert d.check() is None
    d.accept(np.array([2]))
    assert d.check() == 3
    d = _detector(rule1=None, rule2=None, rule3=None)
    d.accept(np.zeros(1000, int))
    assert d.check() is None


def test_detect_endpoint_function_and_config_validation():
    cfg = EndpointConfig(rule1=2.4, rule2=1.2, rule3=20)
    assert detect_endpoint(cfg, has_speech=False, trailing_silence_s=2.4, utterance_s=2.4) == 1
    assert detect_endpoint(cfg, has_speech=False, trailing_silence_s=2.0, utterance_s=2.0) is None
    assert detect_endpoint(cfg, has_speech=True, trailing_silence_s=1.2, utterance_s=5) == 2
    assert detect_endpoint(cfg, has_speech=True, trailing_silence_s=0.1, utterance_s=20) == 3
    for bad in (dict(rule1=0), dict(rule2=-1.0), dict(rule3=float("inf")), dict(rule1="2")):
        with pytest.raises(ValueError, match="EndpointConfig"):
            EndpointConfig(**bad)


def test_config_errors_name_each_bad_rule_and_its_value():
    with pytest.raises(ValueError) as err:
        EndpointConfig(rule1=0, rule2=1.0, rule3=-2)
    assert "invalid EndpointConfig: rule1=0, rule3=-2 (" in str(err.value)
    with pytest.raises(ValueError, match=r"EndpointConfig: rule2=inf \("):
        EndpointConfig(rule2=float("inf"))


def test_onset_lead_is_seconds_at_least_zero_or_off():
    assert EndpointConfig().onset_lead == 0.02  # chosen on FSDD dev continuous recordings (recipes/fsdd/README.md)
    assert EndpointConfig(onset_lead=0).onset_lead == 0 and EndpointConfig(onset_lead=None).onset_lead is None
    for bad in (-0.01, float("nan"), float("inf"), "0.02", True):
        with pytest.raises(ValueError, match=r"invalid EndpointConfig: onset_lead="):
            EndpointConfig(onset_lead=bad)
