"""Is the question answered by the corpus, or only about it? And if not, why not.

A question can be close to the corpus in meaning and still not be answered by it: "What is the
price of the R5?" is about the article when the article names the R5 and gives no price. Three
checks, each giving a reason the reply states:

* ``not_mentioned``: a name in the question (capitalised, an acronym, a word with digits) that
  the corpus never uses, even translated: « L'article ne mentionne pas Tesla. »
* ``not_given``: the question asks for a kind of fact (a price, a revenue, a supplier...) and
  no sentence among the retrieved passages holds that kind of fact: "The article gives no price
  for R5."
* ``no_answer``: the question asks for a name, a number or a date, and the sentences that match
  it hold none (see :func:`search.Retriever.answer`).

Kinds of fact are generic concepts (listed below), never facts of one corpus.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .lexical import LexicalIndex, Term
from .understand import DATE, MONEY, NAME, NAMES, NUMBER, PEOPLE, PERCENT, PLACE, TYPED_WORDS, fold

_WHO = frozenset({None, NAME, NAMES})


@dataclass(frozen=True)
class Concept:
    """A kind of fact: the words that ask for it (folded question) and the words that give it
    (folded sentence); labels in French (with article) and English for the reply."""

    name: str
    fr: str
    en: str
    asks: re.Pattern[str]
    gives: re.Pattern[str]
    # The expected answer types it applies to ("Who offered to take a stake?" asks for names,
    # not for the size of the stake).
    types: frozenset[str | None] = frozenset({None, NUMBER, PERCENT, MONEY})


def _w(*alternatives: str) -> re.Pattern[str]:
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)")


_MONEY = r"\d[\d\s.,]*\s?(?:millions?\s|milliards?\s|md\s|mds\s)?(?:d')?(?:€|euros?|dollars?|\$|£)|[$€£]\s?\d"

CONCEPTS: tuple[Concept, ...] = (
    Concept("time", "aucune heure", "no time of day",
            _w(r"what time", r"a quelle heure", r"quelle heure", r"at what hour"),
            _w(r"\d{1,2}\s?h(?:\s?\d{2})?", r"\d{1,2}:\d{2}", r"heures?", r"a\.?m\.?", r"p\.?m\.?",
               r"midi", r"matin", r"soir", r"apres-midi"), frozenset({None, DATE})),
    Concept("price", "aucun prix", "no price",
            _w(r"prix", r"tarifs?", r"couts?", r"coute\w*", r"payer", r"price[sd]?", r"pricing",
               r"costs?", r"costing", r"how much .*(?:pay|cost)", r"how expensive", r"cheapest",
               r"moins cher", r"msrp"),
            re.compile(_MONEY + r"|(?<!\w)(?:prix|tarifs?|coute\w*|couts?)(?!\w)")),
    Concept("revenue", "aucun chiffre d'affaires", "no revenue",
            _w(r"chiffres? d'affaires", r"revenus?", r"revenues?", r"turnover", r"recettes",
               r"sales figures?", r"ca annuel"),
            _w(r"chiffres? d'affaires", r"revenus?", r"recettes")),
    Concept("profit", "aucun résultat financier", "no profit or margin figure",
            _w(r"benefices?", r"profits?", r"profitab\w*", r"rentab\w*", r"marges?", r"margins?",
               r"pertes?", r"loss(?:es)?", r"earnings", r"ebitda", r"ebit", r"resultat net",
               r"net income", r"resultat operationnel", r"operating income"),
            _w(r"benefices?", r"profits?", r"marges?", r"pertes?", r"resultats? (?:net|operationnel)s?",
               r"ebitda", r"rentab\w*")),
    Concept("salary", "aucun salaire", "no salary",
            _w(r"salaires?", r"salary", r"wages?", r"remuneration", r"paid", r"pay"),
            _w(r"salaires?", r"remuneration\w*", r"paye\w*")),
    Concept("sales", "aucun chiffre de ventes", "no sales figure",
            _w(r"vend\w*", r"ventes?", r"sold", r"sells?", r"selling", r"sales", r"immatricul\w*",
               r"registrations?", r"deliveries", r"delivered", r"livraisons?", r"livre\w*"),
            _w(r"vend\w*", r"ventes?", r"immatricul\w*", r"livraisons?", r"livre(?:e|es|s)?")),
    Concept("range", "aucune autonomie", "no driving range",
            _w(r"autonomie", r"autonomy", r"driving range", r"electric range", r"battery range",
               r"range (?:of|on) (?:the|a|an|its|one)", r"how far", r"km", r"kilometres?",
               r"kilometers?", r"miles?", r"mpg"),
            _w(r"autonomie", r"\d+\s?km", r"kilometres?", r"miles?")),
    Concept("performance", "aucune performance", "no performance figure",
            _w(r"0-100", r"0 a 100", r"acceleration", r"accelere\w*", r"vitesse", r"top speed",
               r"speed", r"km/h", r"mph", r"puissance", r"horsepower", r"chevaux", r"kw", r"kwh",
               r"capacite de (?:la )?batterie", r"battery capacity"),
            _w(r"\d+\s?km/h", r"\d+\s?ch", r"\d+\s?kwh?", r"vitesse", r"puissance", r"chevaux",
               r"acceleration")),
    Concept("supplier", "aucun fournisseur", "no supplier",
            _w(r"fournisseurs?", r"fournit", r"fourni\w*", r"suppl(?:y|ies|ied|ier|iers|ying)",
               r"vendors?", r"approvisionn\w*"),
            _w(r"fournisseurs?", r"fourni\w*", r"approvisionn\w*", r"supplier", r"equipementier"),
            _WHO),
    Concept("headquarters", "aucun siège", "no headquarters",
            _w(r"siege(?: social)?", r"headquarter\w*", r"hq", r"based in", r"base a", r"basee a"),
            _w(r"siege", r"basee?s? a", r"installee?s? a", r"headquarter\w*"),
            frozenset({None, PLACE, NAME})),
    Concept("market share", "aucune part de marché", "no market share",
            _w(r"parts? de marche", r"market shares?"),
            _w(r"parts? de marche")),
    Concept("stake", "aucune participation chiffrée", "no stake or shareholding figure",
            _w(r"stakes?", r"participation", r"du capital(?! market)", r"of the capital(?! market)",
               r"shareholding",
               r"equity", r"detenir", r"detiendra"),
            re.compile(r"\d[\d\s.,]*\s?%\s(?:du|de son) capital|participation\s(?:de\s)?\d")),
    Concept("amount", "aucun montant", "no amount",
            _w(r"combien d'argent", r"how much money", r"montants?", r"amounts?",
               r"valorisation", r"valuation", r"valued", r"valoris\w*", r"how much .* (?:invest|raise|worth)",
               r"combien .* (?:invest\w*|lever|leve)", r"lever", r"raise[sd]?", r"worth",
               r"share price", r"cours de l'action", r"prix de l'action"),
            re.compile(_MONEY)),
    Concept("role", "aucun nom pour ce poste", "no one in that role",
            _w(r"directeurs? (?:financier|des operations|operationnel|technique|commercial|"
               r"marketing|juridique|des ressources humaines|de la communication)s?",
               r"cfo", r"coo", r"cto", r"cmo", r"cio", r"chief (?:financial|operating|technology|"
               r"technical|marketing|information|people) officer", r"finance director",
               r"financial director", r"head of (?:finance|operations|marketing|sales|hr|design)",
               r"porte-parole", r"spokes(?:man|woman|person)", r"president du conseil", r"chairman",
               r"chairwoman", r"chair(?:s|ed|ing)?", r"the board", r"board of directors",
               r"conseil d'administration", r"tresorier", r"treasurer"),
            _w(r"directeurs? (?:financier|des operations|operationnel|technique|commercial|"
               r"marketing|juridique|des ressources humaines|de la communication)s?",
               r"porte-parole", r"president du conseil", r"conseil d'administration", r"cfo", r"coo",
               r"cto", r"tresorier"),
            _WHO),
    Concept("design", "aucun auteur pour ce dessin", "no designer",
            _w(r"dessine\w*", r"designe[dr]s?", r"design(?:ing)?", r"concepteurs?", r"con[cç]u",
               r"who drew", r"who created the (?:logo|design)", r"cree le logo", r"created the logo"),
            _w(r"dessine\w*", r"designers?", r"concepteurs?", r"con[cç]ue? par", r"signee? par",
               r"creee? par", r"agence"), _WHO),
    Concept("production", "aucun volume de production", "no production figure",
            _w(r"produi\w*", r"production", r"fabrique\w*", r"assemble\w*", r"produce[sd]?",
               r"output", r"manufacture[sd]?", r"per year", r"each year", r"a year", r"annually",
               r"par an", r"chaque annee", r"par annee",
               r"capacity", r"capacite"),
            _w(r"produi\w*", r"production", r"fabriqu\w*", r"assembl\w*", r"capacite",
               r"unites", r"exemplaires", r"vehicules par an")),
)


@dataclass(frozen=True)
class Gap:
    """Why the corpus does not answer: ``reason`` code and what was missing."""

    reason: str
    what: str  # the missing name, or the concept's name
    subject: str = ""  # for not_given: the name the question is about, if any
    concept: Concept | None = None


def asked_concepts(question: str, expected: str | None, yes_no: bool = False) -> list[Concept]:
    """The kinds of fact a question asks for; none in a long question, where such words may
    be context ("…who offered to take a financial stake in the new structure?"), nor in a
    yes/no question ("Will Ampere be sold as a brand?" asks for no sales figure)."""
    if len(question.split()) > TYPED_WORDS or yes_no:
        return []
    folded = fold(question)
    return [c for c in CONCEPTS if expected in c.types and c.asks.search(folded)]


def gives(concept: Concept, sentences: Iterable[str]) -> bool:
    return any(concept.gives.search(fold(s)) for s in sentences)


# English capitalises adjectives of nationality ("Japanese carmakers"): they describe, and an
# article need not use them for the question to be answered.
_NATIONALITY = re.compile(r"(?:ese|ish|ian|ean|can|man|ch|ic|i)s?$|^(?:US|USA|UK|EU|UAE)$")
_ENTITY = re.compile(r"(?<![\w'’])(?:[A-ZÀ-ÖØ-Þ][\w-]*|\w*\d\w*)(?![\w])")


def names_in(question: str, terms: Sequence[Term]) -> list[Term]:
    """The terms that are names: capitalised past the first word, acronyms, words with digits."""
    spots = {m.group(0) for m in _ENTITY.finditer(question)
             if m.start() > 0 or m.group(0).isupper() or any(ch.isdigit() for ch in m.group(0))}
    first = re.match(r"\W*(\w+)", question)
    if first and first.group(1).isupper() and len(first.group(1)) > 1:
        spots.add(first.group(1))
    return [t for t in terms
            if any(w in spots for w in re.findall(r"[\w-]+", t.word))
            and not re.fullmatch(r"\d+", t.word) and not _NATIONALITY.search(t.word)]


def missing_name(question: str, lexical: LexicalIndex, terms: Sequence[Term]) -> str | None:
    """The first name of the question the corpus never uses, in any of its forms."""
    for t in names_in(question, terms):
        if not any(lexical.knows(option) for option in t.options):
            return t.word
    return None


def unknown_counted(focus: str, lexical: LexicalIndex) -> str | None:
    """For "how many X", X when the corpus knows no form of it (nor of the lexicon word it
    looks like a misspelling of): then it cannot give their number."""
    from .bilingual import lexicon

    terms = lexical.terms(focus)
    if not terms or any(fold(w) in PEOPLE for w in focus.split()):
        return None
    for t in terms:
        if any(lexical.knows(o) for o in t.options):
            return None
        near = lexicon().closest(t.word)
        if near and any(lexical.knows(o) for o in lexical.terms(near)[0].options if o):
            return None
    return focus


def subject_of(question: str, lexical: LexicalIndex, terms: Sequence[Term]) -> str:
    """The name a question is about, as typed, if the corpus knows it ("R5")."""
    for t in names_in(question, terms):
        if any(lexical.knows(option) for option in t.options):
            return t.word
    return ""
