// What the page does that Gradio's components do not: after each answer, show the newest
// exchange from its first line. (Scrolled to the end, a long answer would hide its own start,
// the short answer, above the fold.) Served as /page.js: the page's policy allows no inline
// script.
(() => {
  "use strict";
  const MARGIN = 8;       // pixels kept above the question
  const FIRST_LINE = 48;  // pixels of the answer that must show below the question
  let seen = 0;

  function scroller(chat) {
    for (const el of chat.querySelectorAll("*")) {
      const y = getComputedStyle(el).overflowY;
      if ((y === "auto" || y === "scroll") && el.scrollHeight > el.clientHeight) return el;
    }
    return null;
  }

  function showNewest() {
    const chat = document.getElementById("aqa-chat");
    if (!chat) return;
    const bots = chat.querySelectorAll('[data-testid="bot"]');
    const grew = bots.length > seen;
    seen = bots.length;
    if (!grew) return;
    const box = scroller(chat);
    if (!box) return;
    const users = chat.querySelectorAll('[data-testid="user"]');
    const bot = bots[bots.length - 1];
    const user = users[users.length - 1];
    const origin = box.getBoundingClientRect().top - box.scrollTop;
    const top = (el) => el.getBoundingClientRect().top - origin;
    // The question and the start of its answer; the answer alone when the question is long.
    let target = (user ? top(user) : top(bot)) - MARGIN;
    if (top(bot) + FIRST_LINE - target > box.clientHeight) target = top(bot) - MARGIN;
    box.scrollTop = Math.max(0, target);
  }

  new MutationObserver(() => requestAnimationFrame(showNewest))
    .observe(document.documentElement, { childList: true, subtree: true });
})();
