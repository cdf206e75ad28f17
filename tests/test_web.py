"""The web page and its HTTP API, against the real server started as ``python app.py``.

The server runs once for the module (real model, real index); the API is driven with
gradio_client, the page with Playwright and Debian's Chromium.
"""

from __future__ import annotations

import html
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .conftest import CORPUS, ROOT
from .serving import index_for, running_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
ARTICLE = CORPUS / "renault-ampere-article.txt"
SCREENSHOT = ROOT / "docs" / "screenshot.png"

FR_QUESTION = "Qui dirige Ampere ?"
FR_EXPECTED = "Luca de Meo"
EN_QUESTION = "How many engineers work for Ampere?"
EN_EXPECTED = "ingénieurs"
XSS = "<img src=x onerror=alert(1)>"


# --- rendering, without a server -------------------------------------------------------------

def test_importing_web_does_not_load_gradio():
    code = "import sys, ampere_qa.web; print('gradio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


def test_user_and_corpus_text_is_rendered_inert():
    from ampere_qa.answer import Answer, Citation
    from ampere_qa.web import render_answer, text_to_html

    out = text_to_html(XSS + " **b** [x](javascript:alert(1)) $$y$$ `c`")
    assert "<" not in out and ">" not in out
    for ch in "*[]()$`":
        assert ch not in out
    evil = "<script>alert(1)</script> *x*"
    ans = Answer("q", "fr", True, f"D'après l'article : « {evil} » [1]",
                 (Citation(1, "p", "corpus/a.txt", 3, 40, evil + " fin", 0.9, ((0, len(evil)),)),),
                 "fr")
    out = render_answer(ans)
    assert "<script" not in out and "&lt;script&gt;" in out
    shown = html.unescape(out)
    assert "<mark>" in out and "caractères 3\u201340" in shown
    assert "Langue détectée : français" in shown


def test_the_short_answer_is_shown_first_in_bold_and_inert():
    from ampere_qa.answer import Answer, Citation
    from ampere_qa.types import ShortAnswer
    from ampere_qa.web import render_answer

    evil = "<b>Luca</b>"
    ans = Answer("q", "en", True, f"{evil} — According to the article: “{evil} runs it.” [1]",
                 (Citation(1, "p", "corpus/a.txt", 0, 20, f"{evil} runs it.", 0.9, ((0, 20),)),),
                 "en", short_answer=ShortAnswer(evil, 1, 0, len(evil)))
    out = render_answer(ans)
    assert '<strong class="aqa-short">&lt;b&gt;Luca&lt;/b&gt;</strong> — According' in out
    plain = Answer("q", "en", True, "According to the article: “A — B.” [1]", (), "en")
    assert "<strong" not in render_answer(plain)


def test_friendly_messages_for_empty_and_long_questions():
    from ampere_qa.question import MAX_QUESTION_CHARS
    from ampere_qa.web import chat_reply

    class Boom:
        def answer(self, question, k=3):
            raise RuntimeError("boom")

    user, bot = chat_reply(Boom(), "   ")
    assert user is None and "Please type a question" in bot
    user, bot = chat_reply(Boom(), "Combien de salariés travaillent chez Ampere ? " * 40)
    assert f"la limite est de {MAX_QUESTION_CHARS}" in bot
    user, bot = chat_reply(Boom(), "How many people work there? " * 60)
    assert f"the limit is {MAX_QUESTION_CHARS}" in bot
    user, bot = chat_reply(Boom(), "Qui dirige Ampere ?")
    assert "erreur inattendue" in bot and "boom" not in bot


# --- the real server -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(model_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python app.py --port <free>``; yields its URL once ready."""
    tmp = tmp_path_factory.mktemp("web")
    with running_server(index_for(tmp), log_path=tmp / "server.log") as (_, url):
        assert url.startswith("http://127.0.0.1:")
        yield url


@pytest.fixture(scope="module")
def client(server: str):
    from gradio_client import Client

    return Client(server, verbose=False)


def _assert_cites(result: dict, expected: str) -> None:
    assert set(result) == {"question", "language", "answered", "answer", "citations", "short_answer",
                           "understood"}
    assert result["answered"] is True
    assert result["citations"], result
    article = ARTICLE.read_text(encoding="utf-8")
    for c in result["citations"]:
        assert set(c) == {"rank", "passage_id", "source", "start", "end", "text", "score"}
        assert (ROOT / c["source"]).resolve() == ARTICLE.resolve()
        assert article[c["start"]:c["end"]] == c["text"]
    assert any(expected in c["text"] for c in result["citations"]), result
    assert "[1]" in result["answer"]


@pytest.mark.integration
def test_api_french_question(client):
    result = client.predict(FR_QUESTION, api_name="/ask")
    _assert_cites(result, FR_EXPECTED)
    assert result["language"] == "fr"
    assert result["answer"].startswith("Luca de Meo — D'après l'article")
    assert result["short_answer"]["text"] == "Luca de Meo"


@pytest.mark.integration
def test_api_english_question_with_k(client):
    result = client.predict(EN_QUESTION, k=2, api_name="/ask")
    _assert_cites(result, EN_EXPECTED)
    assert result["language"] == "en"
    assert "According to the article" in result["answer"]
    assert len(result["citations"]) <= 2


@pytest.mark.integration
def test_api_follow_up_with_the_earlier_questions(client):
    result = client.predict("Et où ?", 3, ["Combien de salariés compte Ampere ?"], api_name="/ask")
    assert result["understood"] == "Et où ? (Combien de salariés compte Ampere ?)"
    assert result["short_answer"]["text"] == "France"
    alone = client.predict("Et où ?", api_name="/ask")
    assert alone["understood"] is None


@pytest.mark.integration
def test_api_off_topic_question_is_not_answered(client):
    result = client.predict("What is the capital of Australia?", api_name="/ask")
    assert result["answered"] is False
    assert result["citations"] == [] and result["reason"] == "off_topic"
    assert "does not seem to be about the article" in result["answer"]


@pytest.mark.integration
@pytest.mark.parametrize(("question", "k", "fragment"), [
    ("", 3, "empty"),
    ("   ", 3, "empty"),
    ("x" * 1001, 3, "limit is 1000"),
    (FR_QUESTION, 0, "k must be"),
])
def test_api_bad_input_is_a_clear_error(client, question, k, fragment):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as info:
        client.predict(question, k=k, api_name="/ask")
    assert fragment in str(info.value)
    assert "Traceback" not in str(info.value)


@pytest.mark.integration
def test_api_lists_only_ask(client):
    api = client.view_api(print_info=False, return_format="dict")
    assert list(api["named_endpoints"]) == ["/ask"]
    assert api["unnamed_endpoints"] == {}


@pytest.mark.integration
def test_concurrent_requests_all_answered(server):
    from gradio_client import Client

    cases = [(FR_QUESTION, FR_EXPECTED), (EN_QUESTION, EN_EXPECTED)] * 4
    clients = [Client(server, verbose=False) for _ in cases]

    def ask(i: int) -> dict:
        return clients[i].predict(cases[i][0], api_name="/ask")

    with ThreadPoolExecutor(len(cases)) as pool:
        results = list(pool.map(ask, range(len(cases))))
    for (_, expected), result in zip(cases, results, strict=True):
        _assert_cites(result, expected)


# --- the page in a browser -------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


# Reports every Content-Security-Policy violation to the console, where Chat records it.
REPORT_CSP = ("document.addEventListener('securitypolicyviolation', e => console.error("
              "'CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI))")


class Chat:
    """The page, with every dialog, off-host request and CSP violation recorded."""

    def __init__(self, browser, url: str):
        self.page = browser.new_page(viewport={"width": 1100, "height": 900})
        self.dialogs: list[str] = []
        self.foreign: list[str] = []
        self.csp_violations: list[str] = []
        self.page.on("dialog", self._dialog)
        self.page.on("request", self._request)
        self.page.on("console", self._console)
        self.page.add_init_script(REPORT_CSP)
        self.response = self.page.goto(url)
        self.box = self.page.locator("#aqa-question textarea")
        self.box.wait_for(timeout=30_000)
        self.bots = self.page.locator('#aqa-chat [data-testid="bot"]')
        self.users = self.page.locator('#aqa-chat [data-testid="user"]')

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _request(self, request) -> None:
        if not request.url.startswith(("http://127.0.0.1", "data:", "blob:")):
            self.foreign.append(request.url)

    def _console(self, message) -> None:
        if "Content Security Policy" in message.text or message.text.startswith("CSP violation"):
            self.csp_violations.append(message.text)

    def ask(self, question: str):
        before = self.bots.count()
        self.box.fill(question)
        self.box.press("Enter")
        reply = self.bots.nth(before)
        reply.wait_for(timeout=30_000)
        return reply

    def close(self) -> None:
        self.page.close()


@pytest.fixture
def chat(browser, server):
    c = Chat(browser, server)
    yield c
    assert c.dialogs == [], c.dialogs
    assert c.csp_violations == [], c.csp_violations  # the page works under its own policy
    c.close()


@pytest.mark.integration
@pytest.mark.browser
def test_page_answers_french_question_with_citation(chat):
    reply = chat.ask(FR_QUESTION)
    text = reply.inner_text()
    assert "Langue détectée : français" in text
    assert "D'après l'article" in text and "[1]" in text
    assert "corpus/renault-ampere-article.txt, caractères" in text
    assert FR_EXPECTED in text
    assert reply.locator("mark").count() >= 1
    assert chat.users.nth(0).inner_text().strip() == FR_QUESTION
    assert chat.foreign == []


@pytest.mark.integration
@pytest.mark.browser
def test_page_answers_english_question_and_follow_ups(chat):
    reply = chat.ask(EN_QUESTION)
    text = reply.inner_text()
    assert "Detected language: English" in text
    assert "According to the article" in text
    assert "corpus/renault-ampere-article.txt, characters" in text
    assert EN_EXPECTED in text
    # A follow-up is answered on its own and the history stays on screen.
    follow = chat.ask("What is the capital of Australia?")
    assert "does not seem to be about the article" in follow.inner_text()
    assert chat.bots.count() == 2 and chat.users.count() == 2
    chat.page.locator("#aqa-clear").click()
    chat.page.wait_for_function(
        "() => document.querySelectorAll('#aqa-chat [data-testid=\"bot\"]').length === 0")
    again = chat.ask(FR_QUESTION)
    assert FR_EXPECTED in again.inner_text()
    assert chat.bots.count() == 1
    # A follow-up leans on the latest question asked since Clear.
    chat.ask("How many employees does Ampere have?")
    where = chat.ask("And where?").inner_text()
    assert "Understood: And where ? (How many employees does Ampere have?)" in where
    assert "France" in where
    # The chat's own trash icon forgets the history too.
    chat.page.locator('#aqa-chat button[aria-label="Clear"]').click()
    chat.page.wait_for_function(
        "() => document.querySelectorAll('#aqa-chat [data-testid=\"bot\"]').length === 0")
    chat.ask(EN_QUESTION)
    assert chat.bots.count() == 1 and chat.users.count() == 1


@pytest.mark.integration
@pytest.mark.browser
def test_page_shows_html_in_a_question_as_text(chat):
    payload = XSS + " **gras** [lien](javascript:alert(2))"
    reply = chat.ask(payload)
    reply.inner_text()
    chat.page.wait_for_timeout(500)  # give an injected handler the time to fire
    assert chat.users.nth(0).inner_text().strip() == payload
    assert chat.page.locator('img[src="x"]').count() == 0
    assert chat.page.locator("#aqa-chat a[href^='javascript']").count() == 0
    assert chat.dialogs == []


@pytest.mark.integration
@pytest.mark.browser
def test_page_friendly_message_for_too_long_question(chat):
    reply = chat.ask("Combien de salariés travaillent chez Ampere ? " * 30)
    assert "la limite est de 1000" in reply.inner_text()
    follow = chat.ask(FR_QUESTION)  # still serving
    assert FR_EXPECTED in follow.inner_text()


@pytest.mark.integration
@pytest.mark.browser
def test_page_works_under_its_content_security_policy(chat):
    headers = chat.response.headers
    csp = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    script_src = next(d for d in csp.split(";") if d.strip().startswith("script-src"))
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    reply = chat.ask(FR_QUESTION)
    assert FR_EXPECTED in reply.inner_text() and reply.locator("mark").count() >= 1
    chat.page.get_by_text("Use via API").first.click()  # the API page opens under the policy too
    chat.page.get_by_text("API documentation").first.wait_for(timeout=10_000)
    assert chat.csp_violations == []
    # The policy is enforced: a script injected into the page does not run.
    chat.page.evaluate("() => { const s = document.createElement('script');"
                       " s.textContent = 'window.aqaInjected = 1'; document.head.append(s); }")
    chat.page.wait_for_timeout(200)
    assert chat.page.evaluate("() => window.aqaInjected") is None
    assert any("script-src" in v for v in chat.csp_violations), chat.csp_violations
    chat.csp_violations.clear()


@pytest.mark.integration
@pytest.mark.browser
def test_page_cannot_be_framed(browser, server):
    page = browser.new_page()
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "frame-ancestors" in m.text else None)
    try:
        page.set_content(f'<iframe src="{server}" width="800" height="600"></iframe>')
        page.wait_for_timeout(2000)
        framed = [f for f in page.frames if f is not page.main_frame]
        assert framed and all(f.evaluate("() => document.querySelectorAll('gradio-app').length") == 0
                              for f in framed if not f.url.startswith("chrome-error:"))
        assert refused, "the browser did not report the frame-ancestors refusal"
    finally:
        page.close()


@pytest.mark.integration
@pytest.mark.browser
def test_screenshot_of_a_french_answer(chat):
    reply = chat.ask(FR_QUESTION)
    reply.locator("mark").first.wait_for()
    chat.page.wait_for_timeout(300)  # let the chat finish scrolling
    SCREENSHOT.parent.mkdir(exist_ok=True)
    chat.page.screenshot(path=str(SCREENSHOT))
    assert SCREENSHOT.stat().st_size > 10_000
