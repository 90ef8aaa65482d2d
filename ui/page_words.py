"""Gradio's own words on the page, said as the app says everything else: in plain words and the page's language.

Gradio's front end writes a few lines itself, in English, whatever the page's language: a waiting run's status
("queue: 2/3 | 37.4/19.0s", monospace, its estimate overrun), a running one's ("processing | 3.2s") and an upload's refusal ("Invalid file type:
song.wav. Only .json allowed."). A small script on the page (``page_script``, given to ``launch(js=...)``) looks
for those lines whenever the page changes, before anything is painted, and shows ours in their place: "Waiting for its turn: 1 ahead of yours, after
the pieces being made now · waiting 37 s". It never changes gradio's own elements' text (gradio keeps updating
them): it hides them with a class and shows its line beside them.

In the tabs that have their own progress line (``OWN_PROGRESS`` marks their first result, ``<tab>-variant-1``, and
the line is ``<tab>-progress``: the run's bar and "12 of 40 s made · about 30 s left", Stop beside it), gradio's
progress text and bar on the result are hidden, and a waiting run says so in that line (until its first report
replaces it), so that one line says where the run is.
"""

from __future__ import annotations

import json

from ui.i18n import catalogue

OWN_PROGRESS = "own-progress"  # elem_classes of a result whose tab shows the run's progress in its own line

GRADIO_WORDS = {
    "next": "Waiting for its turn: yours starts as soon as a piece being made now is finished",
    "behind": "Waiting for its turn: {} ahead of yours, after the pieces being made now",
    "waited": "waiting {} s",
    "working": "Being made: {} s so far",
    "file": "This box takes only {} files: {} is not one.",
}


def page_script() -> str:
    """The page-load script (``launch(js=...)``) that says gradio's own lines in our words and the browser's
    language, and keeps gradio's progress out of the results that have their own line."""
    zh = catalogue()
    said = {"en": GRADIO_WORDS, "zh-CN": {key: zh[text] for key, text in GRADIO_WORDS.items()}}
    return """
() => {
    const said = %s;
    const words = (navigator.language || "en").toLowerCase().startsWith("zh") ? said["zh-CN"] : said["en"];
    const fill = (text, ...values) => values.reduce((t, v) => t.replace("{}", v), text);
    const QUEUE = /^\\s*queue:\\s*(\\d+)\\s*\\/\\s*\\d*\\s*\\|?\\s*(?:([\\d.]+)(?:\\/[\\d.]+)?s)?\\s*$/;
    const WORKING = /^\\s*processing\\s*\\|?\\s*(?:([\\d.]+)(?:\\/[\\d.]+)?s)?\\s*$/;
    const FILE = /^Invalid file types?: (.+)\\. Only (.+) allowed\\.$/;
    const ours = (el) => {
        let line = el.nextElementSibling;
        if (!line || !line.classList.contains("gradio-said")) {
            line = document.createElement("div");
            line.className = "gradio-said " + [...el.classList].filter((c) => c !== "progress-text").join(" ");
            el.after(line);
        }
        return line;
    };
    const tick = () => {
        for (const el of document.querySelectorAll(".progress-text")) {
            const text = el.textContent || "";
            const queued = QUEUE.exec(text), working = WORKING.exec(text);
            const own = el.closest(".%s");
            const next = el.nextElementSibling;
            let line = null;
            if (queued) {
                const place = parseInt(queued[1], 10);
                line = place <= 1 ? words.next : fill(words.behind, place - 1);
                if (queued[2]) line += " · " + fill(words.waited, Math.round(parseFloat(queued[2])));
            } else if (working && !own) {
                line = fill(words.working, Math.round(parseFloat(working[1] || "0")));
            }
            if (line !== null) {
                // a tab with its own progress line says it there (the run's first report replaces it)
                const mine = own && document.querySelector(`#${own.id.replace(/-variant-1$/, "-progress")} span`);
                const box = mine || ours(el);
                if (box.textContent !== line) box.textContent = line;
                el.classList.add("gradio-said-over");
            } else {
                if (next && next.classList.contains("gradio-said")) next.remove();
                el.classList.toggle("gradio-said-over", !!own && text.trim() !== "");
            }
            if (own) own.classList.toggle("own-progress-running", !queued);
        }
        for (const el of document.querySelectorAll('[data-testid="toast-text"]')) {
            const refused = FILE.exec((el.textContent || "").trim());
            if (refused) el.textContent = fill(words.file, refused[2], refused[1]);
        }
    };
    // right after gradio changes the page (a microtask: nothing is painted or read in between, so its English never
    // shows; our own changes are made only where they differ, so this settles), and every 250 ms in any case
    new MutationObserver(tick).observe(document.body, {childList: true, subtree: true, characterData: true});
    setInterval(tick, 250);
}
""" % (json.dumps(said, ensure_ascii=False), OWN_PROGRESS)


# Hides what the script marks: gradio's line where ours shows, and gradio's progress bar and text on a result whose
# tab has its own progress line (part of PAGE_CSS).
PAGE_WORDS_CSS = """
.gradio-said-over { display: none !important; }
.gradio-said { font-family: var(--font); white-space: normal; }
.%s.own-progress-running .progress-level, .%s.own-progress-running .eta-bar { display: none !important; }
""" % (OWN_PROGRESS, OWN_PROGRESS)
