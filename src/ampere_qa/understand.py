"""What a question asks for, read from its wording alone (French or English, no model).

* ``kind``: a question to answer from the corpus, a greeting or thanks, or a request the
  retriever cannot serve (summarise, translate, write, give an opinion).
* ``expected``: the type of the answer the question words call for (who -> a name, combien
  -> a number, quand -> a date...), or None when a sentence is the answer (why, what is...).
* ``asks_for``: the kinds of fact a question can ask for that a corpus may simply not give
  (a price, a revenue, a supplier...). Each is a generic concept with the words that ask for
  it and the words that would give it; see :mod:`answerability`.
* ``parts``: a question that asks two things ("Who heads Ampere and how many people work
  there?") is answered part by part.

Rules are plain regular expressions over generic question words: nothing here names a fact of
any corpus.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Answer types.
NAME = "name"          # a person or an organisation (who)
NAMES = "names"        # one or more names (which companies, which models)
NUMBER = "number"
PERCENT = "percent"
MONEY = "money"
DATE = "date"
DURATION = "duration"
PLACE = "place"

QUESTION, GREETING, REQUEST = "question", "greeting", "request"

# In a longer question the question word may sit in a clause ("when Renault decided…, did it
# also…?"): its type is not read.
TYPED_WORDS = 20

# People are counted under many names (staff, salariés, collaborateurs...): "how many people"
# is answered by a count of any of them.
PEOPLE = frozenset("""
people persons personnes gens employees employes workers travailleurs staff salaries
collaborateurs membres members agents ouvriers effectifs personnel headcount
""".split())


def fold(text: str) -> str:
    """Lower case without accents, apostrophes made straight: the form the rules match."""
    text = unicodedata.normalize("NFKD", text.lower().replace("’", "'"))
    return "".join(c for c in text if not unicodedata.combining(c))


def _rx(*alternatives: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w])(?:" + "|".join(alternatives) + r")(?![\w])")


# Nouns of things that have names: "which company", "quelle usine" ask for a name.
_THINGS_FR = (r"(?:entreprise|societe|groupe|constructeur|fabricant|fournisseur|partenaire|"
              r"investisseur|actionnaire|personne|dirigeant|patron|responsable|marque|modele|voiture|"
              r"vehicule|produit|usine|site|pole|centre|evenement|banque|organisation|membre|pays|"
              r"ville|region|entite|filiale|concurrent|client)")
_THINGS_EN = (r"(?:\w*compan(?:y|ies)|firms?|groups?|\w*makers?|manufacturers?|"
              r"suppliers?|partners?|investors?|shareholders?|persons?|people|executives?|brands?|"
              r"models?|cars?|vehicles?|products?|plants?|factor(?:y|ies)|sites?|hubs?|cent(?:re|er)s?|"
              r"events?|banks?|organi[sz]ations?|members?|countr(?:y|ies)|cit(?:y|ies)|regions?|"
              r"entit(?:y|ies)|subsidiar(?:y|ies)|competitors?|rivals?|customers?)")

# A question that is only a role ("CEO?", "le patron ?") asks who holds it.
_ROLE_ALONE = (r"^(?:the |le |la )?(?:ceo|boss|pdg|patron|patronne|chef|dirigeant|leader|chairman|"
               r"chairwoman|president|presidente|founder|fondateur|directeur general|head)\W*$")

# The question words of each answer type, tried in this order on the folded question; the
# first that matches wins ("how much money" is money before "how much" is a number).
_TYPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (PERCENT, _rx(r"(?:quel|quelle|what)\s+(?:pourcentage|percentage|proportion|part|share|fraction)",
                  r"pourcentage", r"percentage", r"what percent", r"quelle part", r"what share",
                  r"what proportion", r"quelle proportion", r"combien de pour ?cent")),
    (MONEY, _rx(r"how much (?:money|does\s.*\s?cost|do\s.*\s?cost|will\s.*\s?cost|is\s.*\s?worth)",
                r"combien (?:d'argent|coute|coutent|coutera|couteront|vaut|valent|vaudra)",
                r"combien .*(?:coute|investi|investir|paye|payer|depense)",
                r"how much .*(?:cost|invest|pay|spend|worth|raise)",
                r"(?:quel|quelle) (?:est le |sera le )?(?:prix|montant|cout|tarif|valeur|valorisation)",
                r"what (?:is|was|will be) the (?:price|cost|amount|value|valuation)",
                r"what price", r"a quel prix", r"at what price", r"how expensive")),
    (DURATION, _rx(r"combien de temps", r"how long", r"quelle duree", r"what duration",
                   r"pendant combien", r"for how long", r"combien d'annees", r"how many years")),
    (NUMBER, _rx(r"combien", r"how many", r"how much", r"quel nombre", r"what number",
                 r"number of", r"nombre de", r"how big", r"what size", r"quelle taille",
                 r"effectifs?", r"headcount", r"head count")),
    (DATE, _rx(r"quand", r"when", r"what year", r"which year", r"quelle annee", r"en quelle annee",
               r"quelle date", r"what date", r"which date", r"a quel moment", r"a quelle date",
               r"what time", r"what month", r"which month", r"quel mois", r"quel jour",
               r"what day", r"which day", r"d'ici quand", r"by when", r"how soon", r"how long ago",
               r"depuis quand", r"since when", r"jusqu'a quand", r"until when", r"qd",
               r"(?:a|dans) quel(?:le)? (?:echeance|delai|horizon)", r"what deadline",
               r"what timeframe", r"what time ?frame", r"by what (?:date|time)", r"^date (?:de|d'|du|des)",
               r"^(?:the )?date of")),
    (PLACE, _rx(r"_where_", r"where", r"d'ou",
                r"(?:dans|sur|en) quel(?:le)?s? (?:ville|pays|region|endroit|lieu|usine|site|place)s?",
                r"in which (?:city|country|region|place|town|plant|site)s?",
                r"which (?:city|country|region|place|town)s?",
                r"what (?:city|country|region|place|town)s?",
                r"quel(?:le)?s? (?:ville|pays|region|endroit|lieu|place)s?")),
    (NAMES, _rx(rf"(?:quels|quelles) (?:\w+ )?{_THINGS_FR}s", r"lesquels", r"lesquelles",
                r"name the", r"list the", r"cite les")),
    (NAMES, _rx(r"which of", r"(?:quel|quelle)s? (?:des|d'entre)", r"lesquel(?:le)?s? (?:des|d'entre)")),
    (NAME, _rx(r"qui", r"who", r"whom", r"whose", _ROLE_ALONE, rf"(?:quel|quelle)s? (?:\w+ )?{_THINGS_FR}s?",
               rf"(?:which|what) (?:\w+ )?{_THINGS_EN}", r"de quoi", r"part of what",
               r"member of what")),
)

# "Qu'est-ce qui", "who are you": not a request for a name.
_NOT_A_NAME = _rx(r"qu'est-ce qui", r"ce qui", r"qui sont les (?:objectifs|buts|raisons)")

_GREETING = re.compile(
    r"^(?:(?:bonjour|bonsoir|salut|coucou|hello|hi|hey|hiya|yo|good (?:morning|afternoon|evening)"
    r"|merci(?: beaucoup| bien)?|thanks?(?: you)?(?: (?:so|very) much)?|thx|cheers|bye|goodbye"
    r"|au revoir|a bientot|bonne (?:journee|soiree)|see you|ok(?:ay)?|d'accord|super|cool|parfait"
    r"|great|nice|perfect|ca va|comment ca va|comment vas-tu|comment allez-vous|how are you"
    r"|how are you doing|how's it going|what's up|quoi de neuf|tu vas bien|vous allez bien"
    r"|enchante|nice to meet you|re)[\s,!.?;:]*)+$"
)
# A greeting word followed only by small talk ("Hello, how are you doing today?").
_HELLO = frozenset("bonjour bonsoir salut coucou hello hi hey hiya merci thanks thank good bye "
                   "goodbye ok okay super cool great".split())
_SMALL_TALK = _HELLO | frozenset("""
there all everyone everybody folks a lot that was is it this very so much for your the help
helpful today doing you are how how's going morning afternoon evening night day :) me
ca va tout le monde tres bien beaucoup pour ton votre aide et toi vous allez comment c'etait
utile sympa journee soiree matin nuit a tous
""".split())
# Who the bot is and what it does: a greeting of sorts, answered by saying so.
_ABOUT_ME = _rx(r"who are you", r"what are you", r"what can you do", r"how do(?:es)? (?:this|it|you) work",
                r"qui es-tu", r"qui etes-vous", r"tu es qui", r"vous etes qui", r"que sais-tu faire",
                r"que peux-tu faire", r"que pouvez-vous faire", r"qu'est-ce que tu (?:sais|peux) faire",
                r"are you (?:a bot|a robot|human|an ai)",
                r"(?:es-tu|t'es|tu es|etes-vous) une? (?:robot|bot|humain|ia)",
                r"help", r"aide(?:-moi)?")
# Requests outside quoting the corpus: summarising, translating, writing, opinions, jokes.
_REQUEST = _rx(r"summari[sz]e", r"summary", r"sum up", r"resume[rz]?", r"resumes", r"synthese",
               r"translate", r"traduis", r"traduire", r"traduisez", r"traduction", r"translation",
               r"write", r"ecris", r"ecrire", r"ecrivez", r"redige[rz]?", r"compose[rz]?",
               r"poem", r"poeme", r"poesie", r"haiku", r"song", r"chanson", r"story", r"histoire droles?",
               r"joke", r"blague", r"rewrite", r"reformule[rz]?", r"paraphrase[rz]?",
               r"your (?:personal |own |honest )?(?:opinion|view|take)", r"ton avis", r"votre avis",
               r"what do you (?:\w+ )?think", r"how do you (?:\w+ )?(?:feel|rate|judge)", r"qu'en penses-tu",
               r"que penses-tu", r"qu'en pensez-vous", r"que pensez-vous", r"do you like", r"aimes-tu",
               r"should i (?:buy|invest)", r"dois-je (?:acheter|investir)", r"recommend", r"recommande[rz]?",
               r"conseille[rz]?", r"predict", r"predis", r"explain (?:the|this) article",
               r"tell me a", r"raconte", r"make a list of all", r"give me (?:a|the) (?:summary|overview)",
               r"what is (?:the|this) article about", r"de quoi parle (?:l'|cet )article")

# Where a two-part question is cut: "and"/"et" or ";"/"?" before a second question word.
_WH = (r"(?:who|what|when|where|which|why|how|qui|que|quoi|quel|quelle|quels|quelles|quand|ou|"
       r"comment|combien|pourquoi|lequel|laquelle)")
_SPLIT = re.compile(r"(?:\s*[?;]\s*|\s*,?\s+(?:and|et|puis|then)\s+|,\s+)(?=" + _WH + r"\b)")


@dataclass(frozen=True)
class Intent:
    """What one question (or one part of it) asks."""

    text: str
    kind: str = QUESTION
    expected: str | None = None
    focus: str = ""  # the noun the question word bears on: "usine" in "Quelle usine…"
    yes_no: bool = False


_YES_NO = re.compile(
    r"^(?:is|are|was|were|will|would|does|do|did|has|have|had|can|could|should|may|might)\b"
    r"|^est-ce qu|\w-t-(?:il|elle|on)\b|\w-(?:il|elle|ils|elles|on)\b|^y a-t-il")


def yes_no(text: str) -> bool:
    """A question answered by yes or no ("Will Ampere be a brand?", "Ampere sera-t-elle…")."""
    return answer_type(text) is None and _yes_no_form(text)


def _yes_no_form(text: str) -> bool:
    """Opens like a yes/no question and holds no question word."""
    folded = fold(text).strip()
    return bool(_YES_NO.search(folded)) and not re.search(rf"(?<!\w){_WH}(?!\w)|qu'", folded)


def answer_type(text: str) -> str | None:
    # "où" (where) and "ou" (or) fold alike: mark "où" first.
    folded = fold(re.sub(r"(?i)\bo[uù](?=\W|$)",
                         lambda m: "_where_" if "ù" in m.group(0) else m.group(0), text))
    if _NOT_A_NAME.search(folded):
        folded = _NOT_A_NAME.sub(" ", folded)
    for name, pattern in _TYPES:
        m = pattern.search(folded)
        if m:
            if name == NAME and re.search(r"(?:ies|[^s]s|people)$", m.group(0)):
                return NAMES  # "which companies"
            return name
    return None


_FOCUS = re.compile(r"(?<!\w)(?:combien d(?:e |')|how many |how much |nombre d(?:e |')|number of "
                    r"|(?:quel|quelle|quels|quelles) |which |what )(\w[\w-]*)(?: (\w[\w-]*))?")
_NOT_FOCUS = frozenset("""
is are was were be will would does do did has have had can could should est sont etait sera
seront a ont fait font va vont de du des d la le les l un une the a an of to in on at for
""".split())


def focus_of(text: str) -> str:
    """The noun a "which X" / "combien de X" question bears on ("" when there is none)."""
    m = _FOCUS.search(fold(text))
    if not m or m.group(1) in _NOT_FOCUS:
        return ""
    words = [m.group(1)]
    second = m.group(2)
    english = m.group(0).startswith(("how", "which", "what", "number"))
    if english and second and second not in _NOT_FOCUS and (
            second.endswith("s") or re.fullmatch(_THINGS_EN, second)):
        words.append(second)  # "which chip company", "how many charging stations"
    a, b = m.start(1), m.end(len(words))
    return text[a:b] if len(text) == len(fold(text)) else " ".join(words)


def kind_of(text: str) -> str:
    folded = fold(text).strip()
    words = re.findall(r"[\w'-]+", folded)
    if (_GREETING.match(folded) or (len(words) <= 8 and _ABOUT_ME.search(folded))
            or (words and words[0] in _HELLO and set(words) <= _SMALL_TALK)):
        return GREETING
    if _REQUEST.search(folded):
        return REQUEST
    return QUESTION


def parts(text: str) -> list[str]:
    """The question's parts: itself, or its pieces when it asks two or three things."""
    folded = fold(text)
    cuts = [m for m in _SPLIT.finditer(folded) if m.start() > 0]
    if not cuts:
        return [text]
    pieces, last = [], 0
    for m in cuts:
        pieces.append(text[last:m.start()])
        last = m.end()
    pieces.append(text[last:])
    pieces = [p.strip(" ,;?") for p in pieces]
    # A piece too short to stand ("and why") would answer nothing on its own.
    if len(pieces) > 3 or any(len(p.split()) < 2 for p in pieces):
        return [text]
    return pieces


def read(text: str) -> list[Intent]:
    """The intents of a question: one per part, or one greeting/request."""
    kind = kind_of(text)
    if kind != QUESTION:
        return [Intent(text, kind)]
    intents = []
    for p in parts(text):
        expected = answer_type(p)
        intents.append(Intent(p, QUESTION, expected if len(p.split()) <= TYPED_WORDS else None,
                              focus_of(p), expected is None and _yes_no_form(p)))
    return intents
