"""English words for numbers, ordinals and months as a recognizer writes them: the vocabulary
that ITN (:mod:`asr.itn`) reads as numbers, dates and times, and that the punctuation tagger's
rules (:func:`asr.punctuation.keep_numbers_whole`) keep together. Torch-free, no imports."""

from __future__ import annotations

__all__ = ["UNITS", "TEENS", "TENS", "SCALES", "CARDINAL_WORDS", "ORDINALS", "MONTHS", "GUARDED_MONTHS",
           "NUMBER_WORDS", "ORDINAL_WORDS", "MONTH_WORDS"]

UNITS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine".split())}
TEENS = {w: i + 10 for i, w in enumerate("ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split())}
TENS = {w: (i + 2) * 10 for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split())}
SCALES = {"thousand": 3, "million": 6, "billion": 9, "trillion": 12, "quadrillion": 15, "quintillion": 18, "sextillion": 21}
CARDINAL_WORDS = set(UNITS) | set(TEENS) | set(TENS) | set(SCALES) | {"hundred"}
ORDINALS = dict(zip(  # ordinal -> its cardinal word
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth fourteenth fifteenth "
    "sixteenth seventeenth eighteenth nineteenth twentieth thirtieth fortieth fiftieth sixtieth seventieth eightieth "
    "ninetieth hundredth thousandth millionth billionth trillionth".split(),
    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen "
    "nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand million billion trillion".split()))
MONTHS = {w: w.capitalize() for w in
           "january february march april may june july august september october november december".split()}
GUARDED_MONTHS = {"may", "march"}  # also verbs: a day under 10 only after a date cue or with a year
# what the punctuation tagger's rules keep together (asr.punctuation.keep_numbers_whole)
NUMBER_WORDS = frozenset(CARDINAL_WORDS | {"oh"})
ORDINAL_WORDS = frozenset(ORDINALS)
MONTH_WORDS = frozenset(set(MONTHS) - GUARDED_MONTHS)
