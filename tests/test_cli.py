"""The ampere-qa command as a user runs it: exit codes, stdout, one-line errors on stderr."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys

import pytest

from .conftest import INDEX, ROOT


def run(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ampere_qa", *args],
        capture_output=True, text=True, cwd=ROOT, timeout=timeout,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
    )


@pytest.fixture(autouse=True)
def _in_checkout(monkeypatch):
    monkeypatch.chdir(ROOT)  # as `run` does: the default --index is the committed one


def invoke(*args: str) -> subprocess.CompletedProcess:
    """The command run in this process (click's CliRunner), shaped like a finished process.

    Most behaviour (exit codes, messages) needs no new interpreter; ``run`` is kept for what
    only a real process shows (imports, the console script, signals).
    """
    from click.testing import CliRunner

    from ampere_qa.cli import cli

    result = CliRunner().invoke(cli, list(args))
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)


def assert_one_line_error(proc: subprocess.CompletedProcess, code: int, fragment: str) -> None:
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr
    assert any(fragment in line for line in lines), proc.stderr
    if code == 1:
        assert len(lines) == 1 and lines[0].startswith("error: ")


def test_import_and_help_load_neither_torch_nor_gradio():
    code = ("import sys, ampere_qa, ampere_qa.cli; "
            "heavy = {'torch', 'gradio', 'sentence_transformers', 'faiss'} & set(sys.modules); "
            "print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    proc = run("--help")
    assert proc.returncode == 0 and "ask" in proc.stdout and "build" in proc.stdout


@pytest.mark.parametrize("question", ["", "   ", "\x01\x02"])
def test_empty_question_is_bad_input(question):
    assert_one_line_error(invoke("ask", question), 2, "question is empty")


def test_over_long_question_is_bad_input():
    assert_one_line_error(invoke("ask", "a" * 5000), 2, "limit is 1000")


def test_bad_option_is_usage_error():
    proc = invoke("ask", "Qui ?", "-k", "0")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_missing_index_says_how_to_build(tmp_path):
    proc = invoke("ask", "Qui dirige Ampere ?", "--index", str(tmp_path / "none"))
    assert_one_line_error(proc, 1, "ampere-qa build")


def test_corrupted_manifest_is_a_clear_error(tmp_path):
    (tmp_path / "manifest.json").write_text("{broken")
    assert_one_line_error(invoke("info", "--index", str(tmp_path)), 1, "corrupted")


def test_build_rejects_a_binary_corpus_file(tmp_path):
    (tmp_path / "ok.txt").write_text("Bonjour.", encoding="utf-8")
    (tmp_path / "photo.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    proc = invoke("build", "--corpus", str(tmp_path), "--index", str(tmp_path / "idx"))
    assert_one_line_error(proc, 2, "photo.txt looks binary")
    assert not (tmp_path / "idx").exists()


def test_build_missing_corpus(tmp_path):
    assert_one_line_error(invoke("build", "--corpus", str(tmp_path / "nope")), 2, "not found")


def test_info_of_the_committed_index():
    proc = invoke("info", "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["passages"] == 5 and info["dimension"] == 384
    assert info["model"] == "bundled:multilingual-e5-small"
    assert info["stale"] is False
    assert info["title"] == "Ampere Q&A"  # from corpus/ampere-qa.toml, recorded at build
    assert "multilingual-e5-small" in info["model_location"]
    text = invoke("info").stdout
    assert "Model files" in text and "passages" in text


@pytest.mark.integration
def test_ask_json_is_exactly_one_object_with_the_contract(model_cache):
    proc = run("ask", "Qui dirige Ampere ?", "--json", env={"AMPERE_QA_CACHE": str(model_cache)})
    assert proc.returncode == 0, proc.stderr
    obj = json.loads(proc.stdout)  # fails if anything else is printed
    assert set(obj) == {"question", "language", "answered", "answer", "citations", "short_answer",
                        "understood"}
    assert obj["short_answer"]["text"] == "Luca de Meo"
    assert obj["language"] == "fr" and obj["answered"] is True
    assert "Luca de Meo" in obj["answer"]
    c = obj["citations"][0]
    assert set(c) == {"rank", "passage_id", "source", "start", "end", "text", "score", "context"}
    assert c["context"] == ""  # the article has no headings
    article = (ROOT / c["source"]).read_text(encoding="utf-8")
    assert article[c["start"]:c["end"]] == c["text"]
    assert c["rank"] == 1 and 0 < c["score"] <= 1


@pytest.mark.integration
def test_ask_not_found_is_success_in_the_question_language(model_cache):
    proc = run("ask", "What is the capital of Australia?", env={"AMPERE_QA_CACHE": str(model_cache)})
    assert proc.returncode == 0, proc.stderr
    assert "does not seem to be about the article" in proc.stdout
    assert "question language: en" in proc.stdout


@pytest.mark.integration
def test_build_prints_a_summary_and_the_index_answers(tmp_path, model_cache):
    idx = tmp_path / "idx"
    env = {"AMPERE_QA_CACHE": str(model_cache)}
    proc = run("build", "--corpus", "corpus", "--index", str(idx), env=env)
    assert proc.returncode == 0, proc.stderr
    assert "Indexed 1 file(s) into 5 passages" in proc.stdout
    assert "collapsed 4 duplicate(s) (4 exact, 0 near)" in proc.stdout
    built = json.loads((idx / "manifest.json").read_text())
    committed = json.loads((INDEX / "manifest.json").read_text())
    # Same corpus, same model: the same passages, ids and corpus fingerprint as the committed index.
    assert built["files"]["passages"] == committed["files"]["passages"]
    # (less the signature of the files' sizes and times, which names this checkout's copy)
    def located(corpus: dict) -> dict:
        return {k: v for k, v in corpus.items() if k != "stat_signature"} | {"path": "../corpus"}

    assert located(built["corpus"]) == located(committed["corpus"])
    # Recorded relative to the index folder (or absolute): it names this checkout's corpus.
    from ampere_qa.indexing.manifest import Manifest, recorded_corpus

    assert recorded_corpus(idx, Manifest.from_dict(built)) == ROOT / "corpus"
    proc = run("ask", "How many engineers work at Ampere?", "--index", str(idx), "--json", env=env)
    assert "35 %" in json.loads(proc.stdout)["answer"]


# --- finding the index, reading stdin, chatting ----------------------------------------------

def test_the_index_is_found_from_the_option_the_environment_the_folder_or_the_checkout(
        tmp_path, monkeypatch):
    from ampere_qa.cli.options import CHECKOUT_INDEX, INDEX_ENV, find_index
    from ampere_qa.errors import IndexNotFoundError

    assert CHECKOUT_INDEX == INDEX
    monkeypatch.delenv(INDEX_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert find_index("given") == "given"
    assert find_index(None) == str(INDEX)  # from anywhere: the checkout's index
    (tmp_path / "index").mkdir()
    (tmp_path / "index" / "manifest.json").write_text("{}")
    assert find_index(None) == "index"  # ./index first
    monkeypatch.setenv(INDEX_ENV, "/srv/idx")
    assert find_index(None) == "/srv/idx"
    monkeypatch.delenv(INDEX_ENV)
    monkeypatch.setattr("ampere_qa.cli.options.CHECKOUT_INDEX", tmp_path / "nowhere")
    (tmp_path / "index" / "manifest.json").unlink()
    with pytest.raises(IndexNotFoundError) as refused:
        find_index(None)
    message = str(refused.value)
    assert INDEX_ENV in message and str(tmp_path / "index") in message
    assert str(tmp_path / "nowhere") in message and "ampere-qa build" in message


def test_info_is_readable_text_and_json():
    text = invoke("info")
    assert text.returncode == 0, text.stderr
    assert "{" not in text.stdout and "'" not in text.stdout  # no Python dicts
    lines = dict(line.split(None, 1) for line in text.stdout.splitlines() if line.strip())
    assert lines["Title"].strip() == "Ampere Q&A"
    assert "5 passages" in lines["Index"] and "up to date" in text.stdout
    assert "4 exact and 0 near" in text.stdout and "FAISS files" in text.stdout
    as_json = json.loads(invoke("info", "--json").stdout)
    assert as_json["passages"] == 5 and as_json["title"] == "Ampere Q&A"


def test_ask_with_no_question_on_a_terminal_says_what_to_do(monkeypatch):
    from click.testing import CliRunner

    from ampere_qa.cli import cli

    # CliRunner's stdin is not a terminal; this one says it is.
    monkeypatch.setattr("click.testing._NamedTextIOWrapper.isatty", lambda self: True,
                        raising=False)
    result = CliRunner().invoke(cli, ["ask"])
    assert result.exit_code == 2
    assert "pipe questions on stdin" in result.stderr and "ampere-qa chat" in result.stderr


@pytest.mark.integration
def test_ask_reads_one_question_per_line_from_stdin(model_cache):
    questions = "Qui dirige Ampere ?\n\nHow many engineers work for Ampere?\n" + "x " * 600 + "\n"
    for args in (["ask", "--json"], ["ask", "-", "--json"]):
        proc = subprocess.run([sys.executable, "-m", "ampere_qa", *args], input=questions,
                              capture_output=True, text=True, cwd=ROOT, timeout=300,
                              env={**os.environ, "HF_HUB_OFFLINE": "1"})
        rows = [json.loads(line) for line in proc.stdout.splitlines()]  # JSON Lines
        assert [r["question"] for r in rows[:2]] == ["Qui dirige Ampere ?",
                                                      "How many engineers work for Ampere?"]
        assert "Luca de Meo" in rows[0]["answer"] and "ingénieurs" in rows[1]["answer"]
        assert "the limit is 1000" in rows[2]["error"]  # a bad line is reported, not fatal
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
    text = subprocess.run([sys.executable, "-m", "ampere_qa", "ask"], input="Qui dirige Ampere ?\n",
                          capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert text.returncode == 0 and text.stdout.startswith("Luca de Meo — D'après l'article")


@pytest.mark.integration
def test_chat_keeps_the_conversation_until_cleared(model_cache):
    session = "Combien de salariés compte Ampere ?\nEt où ?\n/clear\nEt où ?\n/quit\nQui ?\n"
    proc = subprocess.run([sys.executable, "-m", "ampere_qa", "chat"], input=session,
                          capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr
    replies = [r for r in proc.stdout.split("> ") if r.strip()]
    assert len(replies) == 3  # nothing after /quit
    assert replies[0].startswith("11 000 — ")
    assert "(Compris : Et où ? (Combien de salariés compte Ampere ?))" in replies[1]
    assert "France" in replies[1]
    assert "Compris" not in replies[2] and "ne semble pas porter" in replies[2]  # cleared
    assert "Ampere Q&A" in proc.stderr and "history cleared" in proc.stderr


class _EndlessLine:
    """A stdin of one ``size``-character line (then a short one), made as it is read: what
    the reader asks for at once is recorded."""

    def __init__(self, size: int):
        self.data = itertools.chain(itertools.repeat("x", size), "\nQui dirige Ampere ?\n")
        self.asked: list[int] = []

    def readline(self, limit: int = -1) -> str:
        self.asked.append(limit)
        out = []
        for c in self.data:
            out.append(c)
            if c == "\n" or len(out) == limit:
                break
        return "".join(out)

    def __iter__(self):
        while line := self.readline():
            yield line


@pytest.mark.slow
def test_a_huge_stdin_line_is_read_in_bounded_pieces_and_refused():
    from ampere_qa.cli.commands_ask import MAX_LINE_CHARS, _lines, _LongLine

    stream = _EndlessLine(50 * 2**20)
    lines = list(_lines(stream))
    assert isinstance(lines[0], _LongLine) and len(lines[0]) <= MAX_LINE_CHARS
    assert lines[1:] == ["Qui dirige Ampere ?"]  # the line after it is read as usual
    assert all(0 < n <= MAX_LINE_CHARS for n in stream.asked)


@pytest.mark.integration
def test_ask_stdin_refuses_a_50_mb_line_without_holding_it(model_cache, tmp_path):
    """A 50 MB line peaked at 2.24 GB and came back whole in the JSON; now the child's peak
    memory is that of a short line, and the JSON echoes the line's start."""
    import resource

    def peak_kb(stdin_text: str) -> tuple[int, subprocess.CompletedProcess]:
        src = tmp_path / "in.txt"
        src.write_text(stdin_text)
        script = ("import resource, subprocess, sys; "
                  "p = subprocess.run([sys.executable, '-m', 'ampere_qa', 'ask', '-', '--json'], "
                  "stdin=open(sys.argv[1]), capture_output=True, text=True); "
                  "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
                  "sys.stdout.write(p.stdout)")
        proc = subprocess.run([sys.executable, "-c", script, str(src)], capture_output=True,
                              text=True, cwd=ROOT, timeout=300,
                              env={**os.environ, "HF_HUB_OFFLINE": "1"})
        first, _, rest = proc.stdout.partition("\n")
        return int(first), subprocess.CompletedProcess([], proc.returncode, rest, proc.stderr)

    assert resource  # the child measures itself with it
    base, _ = peak_kb("Qui dirige Ampere ?\n")
    peak, proc = peak_kb("x" * (50 * 2**20) + "\nQui dirige Ampere ?\n")
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert "limit is 1000" in rows[0]["error"] and len(rows[0]["question"]) <= 301
    assert "Luca de Meo" in rows[1]["answer"]
    assert len(proc.stdout) < 20_000
    assert peak - base < 40 * 1024, (base, peak)  # KB: far from the line's 50 MB
