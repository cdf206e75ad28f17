"""Splitting, span round-trip and deduplication, on the shipped article and on small texts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ampere_qa.ingest.corpus import read_corpus
from ampere_qa.ingest.passages import (
    SplitSettings,
    chunks,
    deduplicate,
    normalize,
    paragraphs,
    sentences,
    split_documents,
    windows,
)

from .conftest import CORPUS


def test_shipped_article_splits_into_its_paragraphs_each_once():
    corpus = read_corpus(CORPUS)
    raw = split_documents(corpus.documents, SplitSettings())
    merged, report = deduplicate(raw, SplitSettings())
    text = corpus.documents[0].text
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(raw) == len(lines) == 9
    assert len(merged) == len(set(lines)) == 5
    assert (report.exact, report.near) == (4, 0)
    # Every distinct paragraph appears once, and every location of it is kept.
    assert sorted(p.text for p in merged) == sorted(set(lines))
    assert sum(len(p.locations) for p in merged) == 9
    for p in merged:
        for loc in p.locations:
            assert text[loc.start:loc.end] == p.text


def test_spans_round_trip_and_ids_are_stable():
    corpus = read_corpus(CORPUS)
    a = split_documents(corpus.documents, SplitSettings())
    b = split_documents(corpus.documents, SplitSettings())
    assert [p.id for p in a] == [p.id for p in b]
    assert len({p.id for p in a}) == len(a)  # ids include the span, so duplicates differ
    for p in a:
        assert corpus.documents[0].text[p.start:p.end] == p.text
        assert p.sentence_texts()[0] == p.text[: len(p.sentence_texts()[0])]


def test_sentences_of_a_paragraph():
    text = ('Ampere, décrit comme "un nouveau modèle", englobe des usines. Selon Renault, il est '
            'agile ! Est-ce vrai ? M. Dupont le dit. Le prix est de 1.5 M€. Fin')
    got = [text[a:b] for a, b in sentences(text)]
    assert got == [
        'Ampere, décrit comme "un nouveau modèle", englobe des usines.',
        "Selon Renault, il est agile !",
        "Est-ce vrai ?",
        "M. Dupont le dit.",
        "Le prix est de 1.5 M€.",
        "Fin",
    ]


def test_a_piece_without_a_letter_is_never_a_sentence_of_its_own():
    # A line "." under a FAQ answer, or a list number, was a sentence whose vector sat near
    # every question's, quoted as « 1. ».
    text = "Un exemplaire sera remis. 1. Les recherches.\n.\n\n***\n\n... Deuxième partie. Fin. 2."
    assert [text[a:b] for a, b in paragraphs(text)] == [
        "Un exemplaire sera remis. 1. Les recherches.", ".", "***", "... Deuxième partie. Fin. 2."]
    assert [text[a:b] for a, b in sentences(text, 0, text.index("\n"))] == [
        "Un exemplaire sera remis.", "1. Les recherches."]
    assert [text[a:b] for a, b in sentences(text, text.index("..."))] == [
        "... Deuxième partie.", "Fin. 2."]
    assert sentences("  . 1. ?  ") == []
    packed = list(chunks(text, 1000, pack_chars=600))
    assert [[text[a:b] for a, b in sents] for _, sents in packed] == [
        ["Un exemplaire sera remis.", "1. Les recherches.", "... Deuxième partie.", "Fin. 2."]]
    assert list(chunks("---\n\n* * *\n\n///\n", 1000)) == []


def test_paragraphs_blank_lines_and_hard_wrapped_markdown():
    text = "# Titre\n\nUne phrase coupée\nen deux lignes.\nUne autre.\n\n\nDernier"
    got = [text[a:b] for a, b in paragraphs(text)]
    assert got == ["# Titre", "Une phrase coupée\nen deux lignes.", "Une autre.", "Dernier"]


def test_long_paragraph_is_cut_on_sentence_boundaries():
    sentence = "Renault regroupe ses activités électriques dans une entité nommée Ampere. "
    text = sentence * 40
    pieces = list(chunks(text, max_chars=300))
    assert len(pieces) > 5
    for (a, b), sents in pieces:
        assert b - a <= 300
        assert text[a:b].endswith(".")
        assert sents[0][0] == a and sents[-1][1] == b


def test_one_giant_sentence_is_hard_split_under_the_limit():
    text = "mot " * 2000
    pieces = list(chunks(text, max_chars=500))
    assert all(b - a <= 500 for (a, b), _ in pieces)
    assert "".join(text[a:b] for (a, b), _ in pieces).replace(" ", "") == text.replace(" ", "")


def _passages(texts: list[str]):
    from ampere_qa.ingest.corpus import Document

    doc = Document("x.txt", "\n\n".join(texts), "0")
    return split_documents([doc], SplitSettings(max_chars=5000, pack_chars=0))  # one a paragraph


def test_near_duplicates_collapse_but_different_paragraphs_stay():
    base = ("Renault envisage également d'introduire Ampere en bourse au cours du premier "
            "semestre 2024, malgré les incertitudes entourant la valeur réelle de l'entreprise, "
            "selon plusieurs analystes du secteur automobile interrogés cette semaine à Paris.")
    one_word = base.replace("plusieurs", "quelques")
    other = ("Nissan et Mitsubishi, membres de l'Alliance, ont confirmé leur intention "
             "d'investir, tout comme le spécialiste des semi-conducteurs Qualcomm.")
    merged, report = deduplicate(_passages([base, one_word, other]), SplitSettings())
    assert (report.exact, report.near) == (0, 1)
    assert [p.text for p in merged] == [base, other]
    assert len(merged[0].locations) == 2


def test_exact_duplicates_ignore_case_spacing_and_punctuation():
    merged, report = deduplicate(
        _passages(["Ampere est lancé.", "AMPERE  est lancé !", "Ampere n'est pas lancé."]),
        SplitSettings(),
    )
    assert (report.exact, report.near) == (1, 0)
    assert len(merged) == 2


def test_normalize_is_nfc_and_casefolded():
    assert normalize("E\u0301lectrique, ÉLECTRIQUE!") == "électrique électrique"


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=400),
       st.integers(min_value=20, max_value=400))
def test_any_text_round_trips(text, max_chars):
    for (a, b), sents in chunks(text, max_chars):
        assert a < b
        assert text[a:b] == text[a:b].strip()
        for sa, sb in sents:
            assert a <= sa < sb <= b


def _brute_force_dedup(passages, settings):
    """The definition, pair by pair: each passage against every kept one before it."""
    from ampere_qa.ingest.passages import _shingles

    kept, keys, sets, collapsed = [], {}, [], []
    for p in passages:
        key = normalize(p.text)
        if key in keys:
            collapsed.append((p.id, keys[key], "exact"))
            continue
        sh = _shingles(key, settings.shingle_words)
        best = max(((len(sh & o) / len(sh | o), i) for i, o in enumerate(sets)), default=(0.0, -1))
        if best[0] >= settings.near_duplicate_jaccard:
            collapsed.append((p.id, best[1], "near"))
            continue
        keys[key] = len(kept)
        kept.append(p)
        sets.append(sh)
    return [p.id for p in kept], collapsed


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=2**32 - 1), st.sampled_from([0.5, 0.6, 0.8, 0.9]))
def test_dedup_finds_every_near_duplicate_the_definition_finds(seed, threshold):
    """Prefix filtering is exact: on paragraphs that are edited copies of each other (words
    replaced, dropped, appended), the same passages are kept and each copy goes to the same one
    as comparing every pair."""
    import random

    rng = random.Random(seed)
    words = [f"m{i}" for i in range(40)]
    texts: list[str] = []
    for _ in range(40):
        if texts and rng.random() < 0.6:
            w = rng.choice(texts).split()
            for _ in range(rng.randint(0, 5)):
                op = rng.random()
                if op < 0.5:
                    w[rng.randrange(len(w))] = rng.choice(words)
                elif op < 0.75 and len(w) > 4:
                    del w[rng.randrange(len(w))]
                else:
                    w.append(rng.choice(words))
        else:
            w = [rng.choice(words) for _ in range(rng.randint(3, 30))]
        texts.append(" ".join(w))
    ps = _passages(texts)
    split = SplitSettings(near_duplicate_jaccard=threshold)
    merged, report = deduplicate(ps, split)
    kept, collapsed = _brute_force_dedup(ps, split)
    assert [p.id for p in merged] == kept
    by_id = {p.id: p for p in ps}
    for dup, into, _ in collapsed:
        assert by_id[dup].locations[0] in merged[into].locations
    assert (report.exact, report.near) == (sum(c[2] == "exact" for c in collapsed),
                                           sum(c[2] == "near" for c in collapsed))


@pytest.mark.slow
def test_dedup_stays_near_linear_when_every_paragraph_shares_a_boilerplate_sentence():
    """16,000 paragraphs that all end with the same sentence (every pair shares its 3-grams):
    comparing each with every kept one took 11 s at 4,000 here, minutes at 16,000; now each
    is compared with a bounded number of candidates (a few seconds)."""
    import time

    boiler = ("Pour en savoir plus sur vos droits, consultez la page dédiée du site de la "
              "commission nationale.")
    texts = [f"Le dossier {i} concerne la ville {i % 97} et le service {i % 13}. {boiler}"
             for i in range(16_000)]
    ps = _passages(texts)
    start = time.perf_counter()
    merged, report = deduplicate(ps, SplitSettings())
    assert time.perf_counter() - start < 60  # a bound for a busy machine, not a benchmark
    assert len(merged) == 16_000 and report.collapsed == 0


def test_short_paragraphs_of_a_section_are_packed_up_to_the_target():
    lines = [f"Ligne {i} : une phrase courte sur le sujet numéro {i}." for i in range(12)]
    text = "\n".join(lines)
    alone = list(chunks(text, max_chars=1000))
    assert len(alone) == 12  # a passage per line (one paragraph a line) without packing
    packed = list(chunks(text, max_chars=1000, pack_chars=200))
    assert 1 < len(packed) < 12
    for (a, b), sents in packed:
        assert b - a <= 200 or len(sents) == 1  # never past the target, unless one line is
        assert sents[0][0] == a and sents[-1][1] == b and text[a:b].startswith("Ligne")
    # Every sentence is kept, in order, each once: packing changes passages, not sentences.
    assert [s for _, ss in packed for s in ss] == [s for _, ss in alone for s in ss]


def test_packing_keeps_a_long_paragraph_cut_on_sentences():
    long = "Une phrase assez longue pour remplir le paragraphe entier. " * 30
    text = f"Court.\n{long.strip()}\nFin courte."
    packed = list(chunks(text, max_chars=300, pack_chars=250))
    assert all(b - a <= 300 for (a, b), _ in packed)
    assert text[slice(*packed[0][0])] == "Court."  # the long one does not fit after it


def test_packing_never_crosses_a_heading(tmp_path):
    (tmp_path / "doc.md").write_text("# Un\n\nA court.\n\nB court.\n\n# Deux\n\nC court.\n", encoding="utf-8")
    docs = read_corpus(tmp_path).documents
    out = split_documents(docs, SplitSettings(pack_chars=500))
    assert [(p.context, p.text) for p in out] == [("Un", "A court.\n\nB court."), ("Deux", "C court.")]


def test_windows_cut_a_document_on_words_up_to_the_size():
    text = " ".join(f"mot{i}" for i in range(800)) + "\n\n# Titre\n" + "x" * 300
    pieces = windows(text, 200)
    assert all(len(p) <= 200 for p in pieces[:-1]) and pieces[-1] == "x" * 300  # a long word alone
    assert " ".join(pieces) == " ".join(text.split())
    assert windows("  \n ", 200) == [] and windows("un deux", 0) == ["un", "deux"]
