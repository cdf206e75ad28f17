"""Which language a question is in, so that the reply is phrased in it.

langdetect alone is unreliable on short questions ("Who leads Ampere?" can come out as
Dutch), so the function words of the languages with a pack (:mod:`.lang`), which carry most of
a short question, decide first; langdetect (seeded, so deterministic) decides when they do not,
and may report a language without a pack only when it is confident and no function word of a
pack is present. Such a question is answered in ``DEFAULT``.
"""

from __future__ import annotations

import functools
import re
import threading
from dataclasses import dataclass

from ..packs.lang import available, pack, words

DEFAULT = "en"
# langdetect must be this sure before a question is called none of the packs' languages.
OTHER_LANGUAGE_CONFIDENCE = 0.90

_WORDS = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)?", re.UNICODE)

_lock = threading.Lock()
_factory_ready = False


@dataclass(frozen=True)
class Language:
    """``code`` is what was detected (ISO 639-1); ``reply`` the language the answer uses."""

    code: str
    reply: str


@functools.cache
def _signals() -> tuple[tuple[str, frozenset[str], re.Pattern[str] | None], ...]:
    """Each pack's code, function words and letters (each counts half a word), in pack order."""
    out = []
    for code in available():
        detect = pack(code).section("detect")
        letters = detect.get("letters") or ""
        out.append((code, words(detect["function_words"]),
                    re.compile(letters, re.IGNORECASE) if letters else None))
    return tuple(out)


def _langdetect_probs(text: str) -> dict[str, float]:
    global _factory_ready
    from langdetect import DetectorFactory, detector_factory
    from langdetect.lang_detect_exception import LangDetectException

    with _lock:  # langdetect's factory is global state; seeding makes it deterministic
        if not _factory_ready:
            DetectorFactory.seed = 0
            detector_factory.init_factory()
            _factory_ready = True
        try:
            detector = detector_factory._factory.create()
            detector.append(text)
            return {p.lang: p.prob for p in detector.get_probabilities()}
        except LangDetectException:
            return {}


def _scores(text: str, words_: list[str]) -> list[tuple[float, str]]:
    """Each pack's function-word score, best first (ties in pack order)."""
    parts = [p for w in words_ for p in re.split(r"['’]", w) if p]
    scores = [(sum(p in fw for p in parts) + (0.5 * len(rx.findall(text)) if rx else 0.0), code)
              for code, fw, rx in _signals()]
    order = {code: i for i, (_, code) in enumerate(scores)}
    return sorted(scores, key=lambda t: (-t[0], order[t[1]]))


def detect(text: str) -> Language:
    """Detect the language of a question; never fails (falls back to ``DEFAULT``)."""
    words_ = [w.lower() for w in _WORDS.findall(text)]
    scores = _scores(text, words_)
    (top, lead), (second, _) = scores[:2]
    runners_up = [code for score, code in scores[1:] if score == second]
    decisive = len(words_) < 6 or top >= 2 * second + 2
    if top != second and top > 0.25 * len(words_) and decisive:
        # Function words decide: langdetect could not change the outcome below (or, for a long
        # question with a clear majority, only if ≥ 0.99 sure of the minority): skip its ~3 ms.
        return Language(lead, lead)
    probs = _langdetect_probs(text) if words_ else {}
    best = max(probs, key=lambda k: probs[k]) if probs else DEFAULT
    if (best not in available() and probs[best] >= OTHER_LANGUAGE_CONFIDENCE
            and len(words_) >= 3 and top <= 0.25 * len(words_)):
        # Confidently another language, and the packs' words are incidental ("en", "a").
        return Language(best, DEFAULT)
    if top != second:
        # Function words win, unless langdetect is near-certain of a runner-up.
        other = max(runners_up, key=lambda c: probs.get(c, 0.0))
        if probs.get(other, 0.0) >= 0.99 and len(words_) >= 6:
            lead = other
        return Language(lead, lead)
    ranked = sorted(((probs.get(c, 0.0), c) for c in available()), reverse=True)
    if ranked[0][0] != ranked[1][0]:
        return Language(ranked[0][1], ranked[0][1])
    return Language(DEFAULT, DEFAULT)
