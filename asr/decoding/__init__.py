"""Decoding, torch-free: greedy CTC, prefix beam search with word/character n-gram LMs,
hotwords and grammars, n-best lists, and the result types with word times.

- :mod:`asr.decoding.options`: :class:`DecodingOptions` (one validated object) and :class:`Decoder`;
- :mod:`asr.decoding.greedy`: best path per frame;
- :mod:`asr.decoding.beam_search`: CTC prefix beam search;
- :mod:`asr.decoding.grammar`: phrase lists compiled into the token automaton the search walks;
- :mod:`asr.decoding.lm`: n-gram LMs (ARPA, interpolated Kneser-Ney training);
- :mod:`asr.decoding.result`: ``Word``, ``Utterance``, ``Result``, words from a best path, the
  incremental greedy decoder of streams.
"""

from asr.decoding.options import Decoder, DecodingOptions
from asr.decoding.result import Result, Utterance, Word

__all__ = ["DecodingOptions", "Decoder", "Result", "Utterance", "Word"]
