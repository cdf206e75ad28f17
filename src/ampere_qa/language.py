"""Which language a question is in, so that the reply is phrased in it.

langdetect alone is unreliable on short questions ("Who leads Ampere?" can come out as
Dutch), so function words of French and English, which carry most of a short question, decide
first; langdetect (seeded, so deterministic) decides when they do not, and may report a third
language only when it is confident and no French or English function word is present.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

SUPPORTED = ("fr", "en")
DEFAULT = "en"
# langdetect must be this sure before a question is called neither French nor English.
OTHER_LANGUAGE_CONFIDENCE = 0.90

_FR = frozenset("""
le la les l un une des du de d au aux et ou est sont a ont qui que qu quoi quel quelle quels
quelles quand comment combien pourquoi où dans sur pour par avec sans ce cet cette ces son sa
ses leur leurs il elle ils elles on nous vous je tu y en ne pas plus est-ce c s t se sera
seront été être avoir fait quoi lequel laquelle selon chez vers entre aussi mais donc
""".split())
_EN = frozenset("""
the a an of and or is are was were be been being who whom whose what which when where why
how many much does do did to in on at for with by from into about it its this that these those
there their they he she his her will would can could should has have had not than as
""".split())
_WORDS = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)?", re.UNICODE)
_FR_CHARS = re.compile(r"[àâçéèêëîïôûùüÿœæ]", re.IGNORECASE)

_lock = threading.Lock()
_factory_ready = False


@dataclass(frozen=True)
class Language:
    """``code`` is what was detected (ISO 639-1); ``reply`` the language the answer uses."""

    code: str
    reply: str


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


def detect(text: str) -> Language:
    """Detect the language of a question; never fails (falls back to English)."""
    words = [w.lower() for w in _WORDS.findall(text)]
    parts = [p for w in words for p in re.split(r"['’]", w) if p]
    fr = sum(p in _FR for p in parts) + 0.5 * len(_FR_CHARS.findall(text))
    en = sum(p in _EN for p in parts)
    decisive = len(words) < 6 or max(fr, en) >= 2 * min(fr, en) + 2
    if fr != en and max(fr, en) > 0.25 * len(words) and decisive:
        # Function words decide: langdetect could not change the outcome below (or, for a long
        # question with a clear majority, only if ≥ 0.99 sure of the minority): skip its ~3 ms.
        lead = "fr" if fr > en else "en"
        return Language(lead, lead)
    probs = _langdetect_probs(text) if words else {}
    best = max(probs, key=lambda k: probs[k]) if probs else DEFAULT
    if (best not in SUPPORTED and probs[best] >= OTHER_LANGUAGE_CONFIDENCE
            and len(words) >= 3 and max(fr, en) <= 0.25 * len(words)):
        # Confidently another language, and French/English words are incidental ("en", "a").
        return Language(best, DEFAULT)
    if fr != en:
        # Function words win, unless langdetect is near-certain of the other language.
        lead, other = ("fr", "en") if fr > en else ("en", "fr")
        if probs.get(other, 0.0) >= 0.99 and len(words) >= 6:
            lead = other
        return Language(lead, lead)
    fr_p, en_p = probs.get("fr", 0.0), probs.get("en", 0.0)
    if fr_p != en_p:
        code = "fr" if fr_p > en_p else "en"
        return Language(code, code)
    return Language(DEFAULT, DEFAULT)
