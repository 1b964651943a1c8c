"""Inverse text normalization (ITN), English, rule-based and stdlib-only: the spoken form a CTC
model emits becomes the written form people read.

>>> inverse_normalize("it costs five dollars and twenty cents at seven thirty p m on june third twenty twenty six")
'it costs $5.20 at 7:30 p.m. on June 3, 2026'
>>> TextOptions(itn=True).apply(result)      # a Result or Utterance: its text and its words (times kept)

Classes, with written forms as in the written side of Google's text-normalization data (NeMo's
ITN tests differ in places: no thousands commas, ``07:30``, ``july 25 2012``):

- cardinals: ``two hundred and fifty four`` -> ``254``, ``minus sixty`` -> ``-60``; 1000-9999
  stay plain (``1100``, ``2009``: they are often years), from 10,000 up with commas
  (``147,451``); a round million or more keeps its scale word (``five million`` -> ``5 million``)
- ordinals: ``twenty first`` -> ``21st``, ``eleventh`` -> ``11th``
- decimals: ``three point one four`` -> ``3.14``, ``one point five billion`` -> ``1.5 billion``,
  ``point zero two`` -> ``.02`` (two digits or more after a bare ``point``)
- fractions: ``two thirds`` -> ``2/3``, ``three and a half`` -> ``3 1/2``
- money: ``five dollars and twenty cents`` -> ``$5.20``, ``fifty million dollars`` ->
  ``$50 million``, ``twenty cents`` -> ``$0.20``, euros ``€``, yen ``¥``, pounds sterling ``£``
- time: ``seven thirty p m`` -> ``7:30 p.m.``, ``half past three`` -> ``3:30``, ``quarter to
  twelve`` -> ``11:45``, ``seven o'clock`` -> ``7 o'clock``
- dates: ``june third twenty twenty six`` -> ``June 3, 2026``, ``the third of june`` -> ``3 June``,
  years ``nineteen ninety four`` -> ``1994``, decades ``nineteen eighties`` -> ``1980s``
- measures: ``five kilometers`` -> ``5 km``, ``ten percent`` -> ``10%``, ``five miles`` -> ``5 miles``
- digit strings and telephone numbers (``oh`` is zero inside them, ``double``/``triple``):
  7 digits ``555-1234``, 10 ``(555) 123-4567``, 11 starting with 1 ``1-800-555-1234``, others plain
- a small whitelist: ``mister`` ``Mr.``, ``missus`` ``Mrs.``, ``doctor`` ``Dr.`` and ``saint``
  ``St.`` before a name, ``e g`` ``e.g.``, ``et cetera`` ``etc.``, ``versus`` ``vs.``

Precision before coverage; ordinary words stay words:

- a lone number word under ten (``one of them``, ``two or three``) stays a word unless a
  currency, unit, time marker or fraction follows it, ``minus`` precedes it, or it is part of a
  digit string of three digits or more (``five five five one two three four``); ``zero`` alone too
- first to ninth stay words (``a second opinion``, ``the first time``) except in dates; an
  ordinal after ``a``/``an`` stays (``a tenth of it``); ``twenty second`` stays (``a twenty
  second clip``) unless a date, or a word like ``century``, ``floor``, ``birthday`` follows
- number words next to other number words that make no pattern together stay words (``one
  twenty``, ``ten fifteen``: a price? a time? a range?); so does ``a hundred`` or ``a thousand``
  alone (``a thousand thanks``)
- a clock time needs a marker (``a m``, ``p m``, ``o'clock``) or, for ``seven thirty``, a cue
  before it (``at``, ``by``, ``until``, ``from``, ``to``, ...) or after it (``in the morning``,
  ``tonight``); ``N to H`` needs a marker or ``minutes``; ``may`` and ``march`` take a day under
  ten only after a date cue (``on may fifth``, not ``you may first``) or with a year;
  ``pounds`` (weight or money?) and ``feet`` (``one foot in the grave``) are left alone; bare
  ``point five`` stays (``at this point five``)
- ``doctor`` and ``saint`` stay after a determiner (``the doctor``) and before a function word
  or common verb (``doctor said``); ``for example`` and ``i e`` stay words

Word times survive: :func:`inverse_normalize_words` maps :class:`Word` objects so that a
written token spans the spoken words it replaces (start of the first, end of the last) with the
lowest of their confidences (the weakest word bounds the token's); it may hold a space
(``7:30 p.m.``, ``June 3, 2026``: one token, never split across subtitle lines). Input is
split at whitespace, which is kept; punctuation around a word is kept and ends a pattern; a
pattern never crosses it. Anything else (digits, non-English words, control characters) passes
through untouched, in time linear in the length of the text.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Sequence, Union

from asr.spoken import CARDINAL_WORDS as _NUMWORD
from asr.spoken import GUARDED_MONTHS as _GUARDED_MONTHS
from asr.spoken import MONTHS as _MONTHS
from asr.spoken import ORDINALS as _ORDINAL_WORDS
from asr.spoken import SCALES as _SCALES
from asr.spoken import TEENS as _TEENS
from asr.spoken import TENS as _TENS
from asr.spoken import UNITS as _UNITS

if TYPE_CHECKING:
    from asr.decoding.result import Result, Utterance, Word

__all__ = ["inverse_normalize", "inverse_normalize_words", "TextOptions", "apply", "ABBREVIATIONS"]

# ---- vocabulary -------------------------------------------------------------------------------

_DECADES = {w: v for w, v in zip("twenties thirties forties fifties sixties seventies eighties nineties".split(), range(20, 100, 10))}
_DATE_CUE = {"on", "in", "of", "since", "until", "till", "by", "from", "before", "after", "between", "and", "to", "next",
             "last", "this", "early", "late", "mid", "every", "each", "through", "during"}
_YEAR_CUE = {"in", "since", "of", "year", "from", "until", "till", "circa", "during", "before", "after"}
_TIME_CUE = {"at", "by", "until", "till", "til", "around", "before", "after", "from", "since", "to", "between", "it's"}
_TIME_AFTER = {"tonight", "tomorrow", "today", "sharp"}
_DAYPART = {"morning", "afternoon", "evening"}
# currency phrases -> symbol ("pounds" alone may be weight: left alone)
_CURRENCY = {("dollar",): "$", ("dollars",): "$", ("united", "states", "dollars"): "$", ("united", "states", "dollar"): "$",
             ("us", "dollars"): "$", ("u", "s", "dollars"): "$", ("euro",): "€", ("euros",): "€", ("yen",): "¥",
             ("pound", "sterling"): "£", ("pounds", "sterling"): "£", ("british", "pound"): "£", ("british", "pounds"): "£"}
_PLURAL_CURRENCY = {"dollars", "euros", "pounds"}
# unit phrases -> symbol; "%", "°C", "°F" take no space; miles keep their word (the number converts)
_UNIT = {
    ("percent",): "%", ("per", "cent"): "%",
    ("degrees", "celsius"): "°C", ("degree", "celsius"): "°C", ("degrees", "fahrenheit"): "°F", ("degree", "fahrenheit"): "°F",
    ("kilometers", "per", "hour"): "km/h", ("kilometres", "per", "hour"): "km/h", ("kilometer", "per", "hour"): "km/h",
    ("miles", "per", "hour"): "mph", ("mile", "per", "hour"): "mph",
    ("square", "kilometers"): "km²", ("square", "kilometres"): "km²", ("square", "kilometer"): "km²",
    ("square", "meters"): "m²", ("square", "metres"): "m²", ("square", "meter"): "m²",
    ("square", "feet"): "sq ft", ("square", "foot"): "sq ft", ("square", "miles"): "sq mi", ("square", "mile"): "sq mi",
    ("cubic", "meters"): "m³", ("cubic", "metres"): "m³", ("cubic", "meter"): "m³",
    ("miles",): "miles", ("mile",): "mile",
}
for _words, _sym in (("kilometer|kilometre", "km"), ("meter|metre", "m"), ("centimeter|centimetre", "cm"),
                     ("millimeter|millimetre", "mm"), ("nanometer|nanometre", "nm"), ("kilogram|kilo", "kg"),
                     ("gram", "g"), ("milligram", "mg"), ("liter|litre", "L"), ("milliliter|millilitre", "ml"),
                     ("ounce", "oz"), ("hertz", "Hz"), ("kilohertz", "kHz"), ("megahertz", "MHz"), ("gigahertz", "GHz"),
                     ("watt", "W"), ("kilowatt", "kW"), ("megawatt", "MW"), ("gigawatt", "GW"), ("volt", "V"),
                     ("kilobyte", "KB"), ("megabyte", "MB"), ("gigabyte", "GB"), ("terabyte", "TB"),
                     ("kilowatt hour", "kWh")):  # singular forms, "|" between spellings; the plural adds "s"
    for _w in _words.split("|"):
        parts = tuple(_w.split())
        _UNIT[parts] = _sym
        _UNIT[parts[:-1] + (parts[-1] + ("" if parts[-1].endswith("hertz") else "s"),)] = _sym
_UNIT[("hertz",)] = "Hz"
_NO_SPACE = {"%", "°C", "°F"}
_AMPM = {("a", "m"): "a.m.", ("p", "m"): "p.m.", ("am",): "a.m.", ("pm",): "p.m.", ("a.m",): "a.m.", ("p.m",): "p.m."}
_OCLOCK = {("o'clock",): "", ("oclock",): "", ("o", "clock"): ""}
_AM_VERB = {"i", "not", "going", "so", "also", "still", "just", "sure", "afraid", "glad", "sorry", "happy", "the", "a", "an",
            "very", "really", "here", "there", "told", "asking", "saying", "trying", "looking", "in", "on", "at", "of"}
_FRACTION = {"half": 2, "halves": 2, "third": 3, "thirds": 3, "quarter": 4, "quarters": 4, "fourth": 4, "fourths": 4,
             "fifth": 5, "fifths": 5, "sixth": 6, "sixths": 6, "seventh": 7, "sevenths": 7, "eighth": 8, "eighths": 8,
             "ninth": 9, "ninths": 9, "tenth": 10, "tenths": 10, "hundredth": 100, "hundredths": 100,
             "thousandth": 1000, "thousandths": 1000}
_FRACTION_NEEDS_OF = {"quarter", "quarters", "hundredth", "hundredths", "thousandth", "thousandths"}  # "two quarters" (of a year)
_ORDINAL_CONTEXT = {"century", "centuries", "floor", "birthday", "anniversary", "place", "street", "avenue", "amendment",
                    "round", "grade", "edition", "annual", "row", "precinct", "district", "congress", "session", "term"}
_DETERMINERS = {"a", "an", "the", "my", "your", "his", "her", "its", "our", "their", "this", "that", "these", "those",
                "every", "any", "no", "some", "each", "another", "family", "good", "local", "best", "new", "old", "own",
                "patron", "real", "whose", "which", "what", "one", "other", "same", "first", "second", "next", "plague"}
_NOT_A_NAME = set("""
the a an and or but nor of to in on at for with from by as is was are were be been being am has had have having do does did
will would can could should shall may might must said says say saying told tells tell asks asked ask who whom whose that which
what when where why how if then than so because about after before over under up down out off into onto again just also not
no yes it he she they we you i me him her them us my your his our their this these those there here thinks thought think
wants wanted want needs needed need recommends recommended prescribed prescribes ordered orders gave gives give sees saw see
looked looks look visit visits visited visiting office offices appointment appointments bill bills note notes report reports
who's was is can't couldn't didn't doesn't won't wouldn't isn't wasn't please thanks thank sir ma'am okay ok well
now today tomorrow yesterday tonight again came comes come went goes go called calls call knows knew know explained explains
examined examines checked checks treated treats arrived arrives left leaves walked walks
""".split())
_WHITELIST_TITLES = {"mister": "Mr.", "missus": "Mrs.", "doctor": "Dr.", "saint": "St."}
_GUARDED_TITLES = {"doctor", "saint"}
_WHITELIST_PHRASES = {("e", "g"): "e.g.", ("et", "cetera"): "etc.", ("versus",): "vs."}
_NOT_A_SIGN = _NUMWORD | {"plus", "or", "and", "point"}
_DIGIT_WORDS = {w: str(v) for w, v in _UNITS.items()}
# what ITN writes with a period that is not a sentence's end (subtitles do not break after them)
ABBREVIATIONS = frozenset([*_WHITELIST_TITLES.values(), *_WHITELIST_PHRASES.values(), *_AMPM.values()])
_OH = {"oh", "o"}
_REPEAT = {"double": 2, "triple": 3}

# a pattern can only start at one of these (everything else is passed over at once)
_START = (_NUMWORD | set(_ORDINAL_WORDS) | set(_MONTHS) | set(_WHITELIST_TITLES) | {p[0] for p in _WHITELIST_PHRASES}
          | _OH | set(_REPEAT) | {"a", "the", "half", "quarter", "minus", "point"})


# ---- numbers ----------------------------------------------------------------------------------

def _get(w: Sequence[str], i: int) -> str:
    return w[i] if 0 <= i < len(w) else ""


def _below_100(w, i):
    """(value 1-99, next index) of ``twenty one`` / ``fifteen`` / ``seven``, or None."""
    t = _get(w, i)
    if t in _TENS:
        u = _get(w, i + 1)
        if u in _UNITS and _UNITS[u] > 0:
            return _TENS[t] + _UNITS[u], i + 2
        return _TENS[t], i + 1
    if t in _TEENS:
        return _TEENS[t], i + 1
    if t in _UNITS and _UNITS[t] > 0:
        return _UNITS[t], i + 1
    return None


def _and_below_100(w, k, last=False):
    """``[and] twenty one`` after a hundred or (``last``) a scale, not when it starts the next
    number (``between two hundred and three hundred``): (value, next index) or None."""
    start = k + 1 if _get(w, k) == "and" else k
    r = _below_100(w, start)
    if r is None or _get(w, r[1]) == "hundred" or (last and _get(w, r[1]) in _SCALES):
        return None
    return r


def _below_1000(w, i, allow_a):
    """(value, next index) of ``two hundred [and] fifty four`` / ``a hundred`` / ``ninety``."""
    if allow_a and _get(w, i) == "a" and _get(w, i + 1) == "hundred":
        head, k = 1, i + 1
    else:
        r = _below_100(w, i)
        if r is None:
            return None
        head, k = r
    if _get(w, k) == "hundred" and head < 10:
        value, k = head * 100, k + 1
        r = _and_below_100(w, k)
        if r is not None:
            value, k = value + r[0], r[1]
        return value, k
    return head, k


@dataclass
class _Num:
    end: int  # next index
    value: float  # for checks (decimals as floats)
    text: str  # written, without the scale word: "2,000,003", "5.2", "-60"
    scale: str = ""  # "million" when kept as a word: "5 million"
    words: int = 1  # spoken words used
    is_decimal: bool = False


def _fmt_int(v: int) -> str:
    return f"{v:,}" if abs(v) >= 10000 else str(v)


def _cardinal(w, i, allow_a=False) -> Optional[_Num]:
    """The longest cardinal at ``i``: ``one hundred forty seven thousand four hundred fifty one``,
    ``eleven hundred twenty one``, ``a thousand``; a round million or more keeps its scale word."""
    first = _get(w, i)
    # "eleven hundred", "twenty one hundred and eleven": hundreds counted past ten, alone
    r = _below_100(w, i)
    if r is not None and r[0] >= 11 and r[0] % 10 and _get(w, r[1]) == "hundred":
        k = r[1] + 1
        value = r[0] * 100
        r2 = _and_below_100(w, k, last=True)
        if r2 is not None:
            value, k = value + r2[0], r2[1]
        if _get(w, k) not in _SCALES:
            return _Num(k, value, str(value), words=k - i)
    total, k, last_scale = 0, i, 99
    group, group_scale = 0, None  # the last group and its scale, for "5 million"
    ended_on_scale = False
    while True:
        if allow_a and k == i and first == "a" and _get(w, k + 1) in _SCALES:
            g = (1, k + 1)
        else:
            g = _below_1000(w, k, allow_a and k == i)
        if g is None:
            break
        v, k2 = g
        s = _get(w, k2)
        if s in _SCALES and _SCALES[s] < last_scale:
            total += v * 10 ** _SCALES[s]
            last_scale = _SCALES[s]
            group, group_scale, k, ended_on_scale = v, s, k2 + 1, True
            r = _and_below_100(w, k, last=True) if _get(w, k) == "and" else None
            if r is not None:  # "one thousand and one"
                total, k, ended_on_scale = total + r[0], r[1], False
                break
            continue
        if k2 <= k:
            break
        total, k, ended_on_scale = total + v, k2, False
        break
    if k == i:
        return None
    if ended_on_scale and group_scale is not None and _SCALES[group_scale] >= 6 and total == group * 10 ** _SCALES[group_scale]:
        return _Num(k, total, str(group), scale=group_scale, words=k - i)
    return _Num(k, total, _fmt_int(total), words=k - i)


def _number(w, i, allow_a=False, allow_decimal=True) -> Optional[_Num]:
    """A cardinal or a decimal (``three point one four``, ``zero point five``, ``five point two
    million``; ``point`` first when two digits or more follow: ``point zero two`` -> ``.02``),
    with ``minus`` before it: the amount of money and measures."""
    sign = ""
    k = i
    if _get(w, i) == "minus":
        if _get(w, i - 1) in _NOT_A_SIGN:
            return None  # "ten minus five", "plus or minus": arithmetic, not a sign
        sign, k = "-", i + 1
    bare = allow_decimal and _get(w, k) == "point"  # "point one two o five" -> .1205
    if bare:
        if _get(w, k - 1) in _NUMWORD:
            return None
        n = _Num(k, 0, "")
    elif _get(w, k) == "zero" and _get(w, k + 1) == "point":
        n = _Num(k + 1, 0, "0")
    else:
        n = _cardinal(w, k, allow_a=allow_a and not sign)
    if n is None:
        return None
    if allow_decimal and not n.scale and _get(w, n.end) == "point":
        digits, j = [], n.end + 1
        while True:
            t = _get(w, j)
            if t in _DIGIT_WORDS:
                digits.append(_DIGIT_WORDS[t])
            elif t in _OH:
                digits.append("0")
            else:
                break
            j += 1
        if bare and len(digits) < 2:
            return None  # "at this point five people": one digit after a bare "point" is no number
        if digits:
            text = f"{n.text}.{''.join(digits)}"
            scale = ""
            if _get(w, j) in _SCALES:
                scale, j = _get(w, j), j + 1
            return _Num(j, float(text.replace(",", "")), sign + text, scale, j - i, is_decimal=True)
    return _Num(n.end, -n.value if sign else n.value, sign + n.text, n.scale, n.end - i)


def _ordinal(w, i) -> Optional[tuple[int, int, int]]:
    """(value, next index, words) of ``twenty first``, ``one hundredth``, ``third``, or None."""
    j = i
    while j < len(w) and j - i < 40 and (w[j] in _NUMWORD or w[j] == "and") and w[j] not in _ORDINAL_WORDS:
        j += 1
    t = _get(w, j)
    if t not in _ORDINAL_WORDS:
        return None
    if j == i:
        base = _ORDINAL_WORDS[t]
        value = 10 ** _SCALES[base] if base in _SCALES else (100 if base == "hundred" else None)
        if value is None:
            value = (_UNITS.get(base) or _TEENS.get(base) or _TENS.get(base))
        return value, j + 1, 1
    spoken = list(w[i:j]) + [_ORDINAL_WORDS[t]]
    n = _cardinal(spoken, 0)
    if n is None or n.end != len(spoken):
        return None
    return int(n.value), j + 1, j + 1 - i


def _ordinal_suffix(v: int) -> str:
    if v % 100 in (11, 12, 13):
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(v % 10, "th")


def _year(w, i, first_min=13):
    """(written, next index) of a spoken year: ``nineteen ninety four``, ``twenty twenty six``,
    ``nineteen oh five``, ``nineteen hundred``, decades ``nineteen eighties``; ``first_min``: the
    lowest first half taken (13 bare: ``eleven fifty`` may be a time; 10 after a month)."""
    t = _get(w, i)
    hi = _TEENS.get(t) if t in _TEENS else (20 if t == "twenty" else None)
    if hi is None or hi < first_min:
        return None
    k = i + 1
    nxt = _get(w, k)
    if nxt in _OH and _get(w, k + 1) in _UNITS and _UNITS[_get(w, k + 1)] > 0:
        return str(hi * 100 + _UNITS[_get(w, k + 1)]), k + 2
    if nxt == "hundred" and hi != 20:
        return str(hi * 100), k + 1
    if nxt == "hundreds" and hi != 20:
        return f"{hi * 100}s", k + 1
    if nxt in _DECADES:
        return f"{hi * 100 + _DECADES[nxt]}s", k + 1
    if nxt == "tens" and hi == 20:
        return "2010s", k + 1
    r = _below_100(w, k)
    if r is not None and r[0] >= 10:
        if _get(w, r[1]) in _NUMWORD:
            return None
        return str(hi * 100 + r[0]), r[1]
    return None


def _any_year(w, i):
    """A year after a month: :func:`_year` from ten up, or a cardinal 1000-2999 (``two thousand
    and nine``)."""
    y = _year(w, i, first_min=10)
    if y is not None:
        return y
    n = _cardinal(w, i)
    if n is not None and not n.scale and 1000 <= n.value <= 2999 and _get(w, n.end) not in _NUMWORD:
        return str(int(n.value)), n.end
    return None


# ---- the classes: each (w, i) -> (next index, written) or None -------------------------------------

def _whitelist(w, i):
    t = w[i]
    for phrase, written in _WHITELIST_PHRASES.items():
        if tuple(w[i:i + len(phrase)]) == phrase:
            return i + len(phrase), written
    if t in _WHITELIST_TITLES:
        nxt = _get(w, i + 1)
        if not nxt or not nxt.isalpha() or nxt in _NOT_A_NAME or nxt in _NUMWORD:
            return None
        if t in _GUARDED_TITLES and (_get(w, i - 1) in _DETERMINERS or _get(w, i - 1).endswith("'s")):
            return None
        return i + 1, _WHITELIST_TITLES[t]
    return None


def _match(w, i, table):
    """The longest key of ``table`` (tuples of words) at ``i``: (value, next index) or None."""
    for size in (3, 2, 1):
        key = tuple(w[i:i + size])
        if len(key) == size and key in table:
            return table[key], i + size
    return None


def _hour(w, i):
    r = _below_100(w, i)
    if r is not None and 1 <= r[0] <= 12 and r[1] == i + 1:
        return r
    return None


def _minutes(w, i):
    """(``"05"``, next index) of ``oh five`` / ``thirty five``: minutes 1-59, or None."""
    if _get(w, i) in _OH and _get(w, i + 1) in _UNITS and _UNITS[_get(w, i + 1)] > 0:
        return f"0{_UNITS[w[i + 1]]}", i + 2
    r = _below_100(w, i)
    if r is not None and 10 <= r[0] <= 59:
        return str(r[0]), r[1]
    return None


def _marker(w, i):
    m = _match(w, i, _AMPM)
    if m is None or (w[i] == "am" and _get(w, i + 1) in _AM_VERB):  # "which one am i"
        return None
    return " " + m[0], m[1]


def _time(w, i):
    t = w[i]
    # "half past three", "(a) quarter to twelve", "ten (minutes) past six", "ten minutes to eleven"
    k = i + 1 if t == "a" and _get(w, i + 1) == "quarter" else i
    rel_minutes, explicit = None, False
    if w[k] == "half":
        rel_minutes, k = 30, k + 1
        if _get(w, k) != "past":
            return None
    elif w[k] == "quarter":
        rel_minutes, k = 15, k + 1
    elif t != "a":
        r = _below_100(w, i)
        if r is not None and r[0] <= 30 and _get(w, r[1]) in ("minutes", "minute", "past", "to", "after"):
            rel_minutes, k = r[0], r[1]
            if _get(w, k) in ("minutes", "minute"):
                explicit, k = True, k + 1
    if rel_minutes is not None and _get(w, k) in ("past", "after", "to"):
        h = _hour(w, k + 1)
        if h is not None:
            marker = _marker(w, h[1])
            before = _get(w, k) == "to"
            if before and w[i] not in ("quarter", "a") and not explicit and marker is None:
                return None  # "five to ten": a range as often as a time
            if _get(w, k) == "after" and not explicit and w[i] not in ("quarter", "a", "half"):
                return None
            hour, minute = h[0], rel_minutes
            if before:
                hour, minute = (hour - 2) % 12 + 1, 60 - rel_minutes
            end = marker[1] if marker else h[1]
            return end, f"{hour}:{minute:02d}" + (marker[0] if marker else "")
    # "seven p m", "seven thirty p m", "seven o'clock", "at seven thirty"
    h = _hour(w, i)
    if h is None:
        return None
    k = h[1]
    oclock = _match(w, k, _OCLOCK)
    if oclock is not None:
        return oclock[1], f"{h[0]} o'clock"
    mm = _minutes(w, k)
    if mm is not None:
        k = mm[1]
    marker = _marker(w, k)
    if marker is not None:
        return marker[1], f"{h[0]}:{mm[0]}{marker[0]}" if mm else f"{h[0]}{marker[0]}"
    if mm is None or _get(w, k) in _NUMWORD or _match(w, k, _UNIT) or _match(w, k, _CURRENCY):
        return None
    after = _get(w, k)
    daypart = (after == "in" and _get(w, k + 1) == "the" and _get(w, k + 2) in _DAYPART) or \
              (after == "at" and _get(w, k + 1) == "night")
    if _get(w, i - 1) in _TIME_CUE or after in _TIME_AFTER or daypart:
        return k, f"{h[0]}:{mm[0]}"
    return None


def _date(w, i):
    t = w[i]
    if t in _MONTHS:
        month, k = _MONTHS[t], i + 1
        cue = _get(w, i - 1) in _DATE_CUE
        guarded = t in _GUARDED_MONTHS  # "you may first ...", "they march twenty miles"
        d = _ordinal(w, k + 1 if _get(w, k) == "the" else k)
        if d is not None and 1 <= d[0] <= 31:
            y = _any_year(w, d[1])
            if y is not None:
                return y[1], f"{month} {d[0]}, {y[0]}"
            if not guarded or cue or d[0] >= 10:  # "you may first", but "may twenty first"
                return d[1], f"{month} {d[0]}"
        if guarded and not cue:
            return None
        c = _below_100(w, k)
        if c is not None and 1 <= c[0] <= 31 and not guarded:
            y = _any_year(w, c[1])
            if y is not None:
                return y[1], f"{month} {c[0]}, {y[0]}"
        y = _any_year(w, k)
        if y is not None:
            return y[1], f"{month} {y[0]}"
        if c is not None and 1 <= c[0] <= 31 and not guarded and c[1] == len(w):
            return c[1], f"{month} {c[0]}"
        return None
    # "(the) third of june (twenty twenty six)"
    k = i + 1 if t == "the" else i
    d = _ordinal(w, k)
    if d is None or not 1 <= d[0] <= 31 or _get(w, d[1]) != "of" or _get(w, d[1] + 1) not in _MONTHS:
        return None
    month, k = _MONTHS[w[d[1] + 1]], d[1] + 2
    y = _any_year(w, k)
    if y is not None:
        return y[1], f"{d[0]} {month} {y[0]}"
    return k, f"{d[0]} {month}"


def _money(w, i):
    n = _number(w, i, allow_a=True)
    if n is None:
        return None
    cur = _match(w, n.end, _CURRENCY)
    amount = n.text
    if cur is None:
        # "twenty cents" -> $0.20
        if n.is_decimal or n.scale or not 1 <= n.value <= 99 or n.text.startswith("-"):
            return None
        unit = _get(w, n.end)
        if unit == "cents" and n.value > 1 or unit == "cent" and n.value == 1:
            return n.end + 1, f"$0.{int(n.value):02d}"
        return None
    symbol, k = cur
    if n.value == 1 and not n.is_decimal and not n.scale and any(x in _PLURAL_CURRENCY for x in w[n.end:k]):
        return None  # "one dollars": not a well-formed amount
    sign = "-" if amount.startswith("-") else ""
    amount = amount.lstrip("-")
    if n.scale:
        return k, f"{sign}{symbol}{amount} {n.scale}"
    if not n.is_decimal:
        # "and twenty cents", "twenty cents", "sixty three" at the very end
        kk = k + 1 if _get(w, k) == "and" else k
        c = _below_100(w, kk)
        if c is not None:
            unit = _get(w, c[1])
            if unit == "cents" and c[0] > 1 or unit == "cent" and c[0] == 1:
                return c[1] + 1, f"{sign}{symbol}{amount}.{c[0]:02d}"
            if kk == k and c[1] == len(w) and c[0] >= 10:
                return c[1], f"{sign}{symbol}{amount}.{c[0]:02d}"
    return k, f"{sign}{symbol}{amount}"


def _measure(w, i):
    n = _number(w, i, allow_a=True)
    if n is None:
        return None
    u = _match(w, n.end, _UNIT)
    if u is None:
        return None
    symbol, k = u
    amount = n.text + (f" {n.scale}" if n.scale else "")
    return k, f"{amount}{'' if symbol in _NO_SPACE else ' '}{symbol}"


def _fraction(w, i):
    n = _cardinal(w, i)
    if n is None or n.scale:
        return None
    k = n.end
    # "three and a half", "two and three quarters"
    if _get(w, k) == "and" and _get(w, i - 1) not in _NUMWORD:
        if _get(w, k + 1) == "a" and _get(w, k + 2) in ("half", "quarter"):
            return k + 3, f"{n.text} 1/{_FRACTION[w[k + 2]]}"
        if _get(w, k + 1) == "three" and _get(w, k + 2) == "quarters":
            return k + 3, f"{n.text} 3/4"
    den = _get(w, k)
    if den not in _FRACTION:
        return None
    d = _FRACTION[den]
    plural = den.endswith("s")
    if (n.value == 1) == plural or not n.value < d:
        return None  # "twenty third" is an ordinal; "two halves" not a fraction
    if _get(w, k + 1) in ("a", "an"):
        return None  # "six of one half a dozen of the other"
    if den in _FRACTION_NEEDS_OF and _get(w, k + 1) != "of":
        return None
    if _get(w, i - 1) in ("the", "a", "an") and den not in ("half", "halves"):
        return None  # "the one hundredth", "the one third" ... an ordinal
    return k + 1, f"{n.text}/{d}"


def _decimal(w, i):
    n = _number(w, i)
    if n is None or not (n.is_decimal or n.scale):
        return None
    if _get(w, n.end) in _NUMWORD:
        return None
    return n.end, n.text + (f" {n.scale}" if n.scale else "")


def _digits(w, i):
    """Three digits or more, spoken one by one (``oh`` is zero inside, ``double``/``triple``)."""
    groups = []  # (digits, bare oh)
    k = i
    while True:
        t = _get(w, k)
        if t in _REPEAT and (_get(w, k + 1) in _DIGIT_WORDS or _get(w, k + 1) in _OH):
            d = "0" if w[k + 1] in _OH else _DIGIT_WORDS[w[k + 1]]
            groups.append((d * _REPEAT[t], False))
            k += 2
        elif t in _DIGIT_WORDS:
            groups.append((_DIGIT_WORDS[t], False))
            k += 1
        elif t in _OH:
            groups.append(("0", True))
            k += 1
        else:
            break
    total = sum(len(g) for g, _ in groups)
    if total < 7:  # "oh one two": the interjection, unless it is a telephone number's
        while groups and groups[-1][1]:
            groups.pop()
            k -= 1
        if groups and groups[0][1]:
            return None
    digits = "".join(g for g, _ in groups)
    if len(digits) < 3 or len(groups) < 2 or _get(w, k) in _NUMWORD:
        return None
    if len(digits) == 7:
        text = f"{digits[:3]}-{digits[3:]}"
    elif len(digits) == 10:
        text = f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"
    elif len(digits) == 11 and digits[0] == "1":
        text = f"1-{digits[1:4]}-{digits[4:7]}-{digits[7:]}"
    else:
        text = digits
    return k, text


def _ordinal_rule(w, i):
    if _get(w, i - 1) in ("a", "an"):
        return None
    o = _ordinal(w, i)
    if o is None:
        return None
    value, k, words = o
    if words == 1 and value < 10:
        return None
    if words > 1 and w[k - 1] == "second" and _get(w, k) not in _ORDINAL_CONTEXT:
        return None  # "a twenty second clip"
    if words == 1 and w[i] in ("hundredth", "thousandth", "millionth", "billionth", "trillionth") and _get(w, i - 1) != "the":
        return None
    return k, f"{value}{_ordinal_suffix(value)}"


def _bare_year(w, i):
    y = _year(w, i, first_min=11 if _get(w, i - 1) in _YEAR_CUE else 13)
    if y is None or _match(w, y[1], _CURRENCY) or _match(w, y[1], _UNIT) or _get(w, y[1]) in ("vision", "hindsight"):
        return None  # "twenty twenty dollar bills", "twenty twenty vision"
    return y[1], y[0]


def _cardinal_rule(w, i):
    n = _number(w, i, allow_a=True, allow_decimal=False)
    if n is None:
        return None
    nxt = _get(w, n.end)
    if nxt in _NUMWORD or nxt in _ORDINAL_WORDS or nxt in _OH and _get(w, n.end + 1) in _NUMWORD:
        return None  # "ten fifteen", "twenty second": a pattern we do not know
    if w[i] == "a" and n.words <= 2:
        return None  # "a hundred", "a million times"
    if n.words == 1 and (n.value < 10):
        return None  # "one of them", "zero"
    return n.end, n.text + (f" {n.scale}" if n.scale else "")


_RULES = (_whitelist, _time, _date, _money, _measure, _fraction, _decimal, _digits, _ordinal_rule, _bare_year, _cardinal_rule)


def _scan(w: Sequence[str]) -> list[tuple[int, int, str]]:
    """(first, end, written) of each pattern in ``w`` (lower-case words of one stretch without
    punctuation), left to right, each the first rule's match at its start."""
    spans = []
    i, n = 0, len(w)
    prev_number = False  # the word before is a number word left as a word
    while i < n:
        t = w[i]
        hit = None
        if t in _START and not (prev_number and t in _NUMWORD):
            for rule in _RULES:
                hit = rule(w, i)
                if hit is not None and hit[0] > i:
                    break
                hit = None
        if hit is not None:
            spans.append((i, hit[0], hit[1]))
            i, prev_number = hit[0], False
        else:
            prev_number = t in _NUMWORD
            i += 1
    return spans


# ---- text and words ---------------------------------------------------------------------------

_SPLIT = re.compile(r"(\s+)")
_EDGE = re.compile(r"^(\W*)(.*?)(\W*)$", re.S)
_WORDCHAR = re.compile(r"\w")


def _spans(tokens: Sequence[str]) -> list[tuple[int, int, str, str, str]]:
    """(first, end, written, leading punctuation, trailing punctuation) of each pattern in a list
    of whitespace-free tokens; a pattern lies within a stretch without punctuation."""
    cores, pre, post = [], [], []
    for tok in tokens:
        if not _WORDCHAR.search(tok):
            cores.append("")
            pre.append(tok)
            post.append("")
            continue
        m = _EDGE.match(tok)
        a, core, b = m.group(1), m.group(2), m.group(3)
        if core.endswith("'") and core[:-1].isalpha():  # "nineties'"
            core, b = core[:-1], "'" + b
        cores.append(core.lower())
        pre.append(a)
        post.append(b)
    out = []
    start = 0

    def flush(end):
        for a, b, text in _scan(cores[start:end]):
            out.append((start + a, start + b, text, pre[start + a], post[start + b - 1]))

    for k in range(len(tokens)):  # stretches without punctuation: cut before a leading mark, after a trailing one
        if not cores[k] or pre[k]:
            flush(k)
            start = k if cores[k] else k + 1
        if cores[k] and post[k]:
            flush(k + 1)
            start = k + 1
    flush(len(tokens))
    return out


def _join(text: str, lead: str, trail: str) -> str:
    if text.endswith(".") and trail.startswith("."):
        trail = trail[1:]
    return lead + text + trail


def inverse_normalize(text: str) -> str:
    """The written form of spoken-form ``text`` (see the module's description); text without
    a pattern comes back unchanged, whitespace included."""
    if not text or not isinstance(text, str):
        return text
    parts = _SPLIT.split(text)  # words at even indices (maybe ""), whitespace at odd
    index = [p for p in range(0, len(parts), 2) if parts[p]]
    spans = _spans([parts[p] for p in index])
    if not spans:
        return text
    for first, end, written, lead, trail in reversed(spans):
        a, b = index[first], index[end - 1]
        parts[a:b + 1] = [_join(written, lead, trail)]
    return "".join(parts)


def inverse_normalize_words(words: Sequence[Word]) -> list[Word]:
    """:func:`inverse_normalize` over timed words: each written token is one :class:`Word` from
    the start of the first spoken word it replaces to the end of the last, with the lowest of
    their confidences (None when none has one). Words left alone are returned as they are."""
    words = list(words)
    spans = _spans([w.word.strip() or "" for w in words]) if words else []
    if not spans:
        return words
    out, i = [], 0
    for first, end, written, lead, trail in spans:
        out.extend(words[i:first])
        group = words[first:end]
        confs = [w.confidence for w in group if w.confidence is not None]
        out.append(dataclasses.replace(group[0], word=_join(written, lead, trail), start=group[0].start,
                                       end=max(w.end for w in group), confidence=min(confs) if confs else None))
        i = end
    out.extend(words[i:])
    return out


# ---- switches for the recognizers' results ----------------------------------------------------

@dataclass(frozen=True)
class TextOptions:
    """What is done to recognized text after decoding. ``punctuate``: marks and capitals by the
    tagger of :mod:`asr.punctuation` (the built-in model, or ``punctuation_model``, a file);
    ``itn``: spoken form to written form (:func:`inverse_normalize`). Both apply to final
    results' text and words (each word keeps its times); punctuation first, on the words the
    recognizer wrote, then ITN, which reads words in any case and keeps marks around a number.
    Off by default: evaluation and the models themselves work in the spoken form."""

    itn: bool = False
    punctuate: bool = False
    punctuation_model: Optional[str] = None  # None: the built-in model (asr/assets/punctuation)

    def __post_init__(self):
        for name in ("itn", "punctuate"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"invalid TextOptions: {name} must be True or False, got {getattr(self, name)!r}")
        if self.punctuation_model is not None:
            if not isinstance(self.punctuation_model, str) or not self.punctuation_model:
                raise ValueError(f"invalid TextOptions: punctuation_model must be a path or None, got {self.punctuation_model!r}")
            if not self.punctuate:
                raise ValueError("invalid TextOptions: punctuation_model is given but punctuate is off")

    def _text(self, text: str, punctuator) -> str:
        if punctuator is not None:
            text = punctuator.punctuate(text)
        return inverse_normalize(text) if self.itn else text

    def _words(self, words, punctuator) -> list:
        if punctuator is not None and words:
            words = punctuator.punctuate_words(words)
        return inverse_normalize_words(words) if self.itn else list(words)

    def apply(self, x: Union[Result, Utterance]) -> Union[Result, Utterance]:
        """A copy of ``x`` (a :class:`Result` or an :class:`Utterance`) with its text and its
        words, and for a result each utterance's, readable; ``x`` itself when both are off."""
        if not (self.itn or self.punctuate):
            return x
        punctuator = None
        if self.punctuate:
            from asr.punctuation import default_punctuator

            punctuator = default_punctuator(self.punctuation_model)
        if hasattr(x, "utterances"):
            utts = [self.apply(u) for u in x.utterances]
            text = " ".join(u.text for u in utts if u.text) if utts else self._text(x.text, punctuator)
            words = [w for u in utts for w in u.words] if utts else self._words(x.words, punctuator)
            return dataclasses.replace(x, text=text, words=words, utterances=utts)
        words = x.words
        if words and x.text.split() == [w.word for w in words]:  # the text is its words: tag once
            words = self._words(words, punctuator)
            return dataclasses.replace(x, text=" ".join(w.word for w in words), words=words)
        return dataclasses.replace(x, text=self._text(x.text, punctuator), words=self._words(words, punctuator))


def apply(x: Union[Result, Utterance]) -> Union[Result, Utterance]:
    """``x`` (a :class:`Result` or an :class:`Utterance`) in written form: ``TextOptions(itn=True).apply(x)``."""
    return TextOptions(itn=True).apply(x)
