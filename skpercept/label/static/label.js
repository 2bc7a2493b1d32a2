// The labelling page: fetch a question, send each click with its own id (retried until the server
// says it is stored), undo, keyboard shortcuts. No click is counted before the server commits it.
(function () {
  "use strict";
  const page = document.body.dataset;
  let question = null;
  let busy = false;

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function setStatus(text, error) {
    const status = document.getElementById("status");
    status.textContent = text;
    status.className = error ? "error" : "";
  }

  function showCounts(counts) {
    const parts = Object.entries(counts).map(([a, n]) => `${a}: ${n}`);
    const total = Object.values(counts).reduce((s, n) => s + n, 0);
    document.getElementById("progress").textContent = `${total} judgments (${parts.join(", ")})`;
    document.body.dataset.total = String(total);
  }

  function setEnabled(on) {
    document.querySelectorAll(".choice").forEach((b) => { b.disabled = !on; });
  }

  async function post(url, body) {
    for (let attempt = 0; attempt < 4; attempt++) {
      try {
        const response = await fetch(url, {
          method: "POST",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": page.csrf },
          body: JSON.stringify(body),
          credentials: "same-origin",
        });
        const answer = await response.json().catch(() => ({}));
        if (!response.ok) throw Object.assign(new Error(answer.error || response.statusText), { fatal: response.status < 500 });
        return answer;
      } catch (err) {
        if (err.fatal || attempt === 3) throw err;
        await new Promise((r) => setTimeout(r, 300 * (attempt + 1)));  // the same click id again
      }
    }
  }

  async function load() {
    setEnabled(false);
    const response = await fetch(page.next, { credentials: "same-origin" });
    question = await response.json();
    const text = question.kind === "pairs" ? `Which is more ${question.attribute}?` : `How ${question.attribute} is this?`;
    document.getElementById("question").textContent = text;
    const imgA = document.getElementById("image-a");
    imgA.src = question.image_a;
    imgA.dataset.item = question.item_a;
    if (question.kind === "pairs") {
      const imgB = document.getElementById("image-b");
      imgB.src = question.image_b;
      imgB.dataset.item = question.item_b;
    }
    showCounts(question.counts);
    document.getElementById("model-note").textContent = question.model
      ? "Questions are chosen by your model: the ones it is least sure about."
      : `Random questions until the model starts (${question.min_judgments} judgments of ${question.attribute}).`;
    busy = false;
    setEnabled(true);
    document.body.dataset.ready = "1";
  }

  async function choose(value) {
    if (busy || !question) return;
    busy = true;
    document.body.dataset.ready = "0";
    setEnabled(false);
    const body = {
      client_id: newId(), attribute: question.attribute, item_a: question.item_a,
      item_b: question.kind === "pairs" ? question.item_b : null, value: value,
    };
    try {
      const answer = await post(page.judge, body);
      showCounts(answer.counts);
      setStatus("Saved.");
      await load();
    } catch (err) {
      setStatus(`Not saved: ${err.message}. Click again.`, true);
      busy = false;
      setEnabled(true);
      document.body.dataset.ready = "1";
    }
  }

  async function undo() {
    if (busy) return;
    busy = true;
    document.body.dataset.ready = "0";
    try {
      const answer = await post(page.undo, {});
      showCounts(answer.counts);
      setStatus(answer.undone ? "Undone: that question comes back later." : "Nothing to undo.");
      await load();
    } catch (err) {
      setStatus(`Undo failed: ${err.message}`, true);
      busy = false;
      document.body.dataset.ready = "1";
    }
  }

  document.querySelectorAll(".choice").forEach((button) => {
    button.addEventListener("click", () => choose(Number(button.dataset.value)));
  });
  document.getElementById("undo").addEventListener("click", undo);
  document.addEventListener("keydown", (event) => {
    if (event.target.tagName === "INPUT" || event.ctrlKey || event.metaKey || event.altKey) return;
    const key = event.key;
    if (key === "Backspace" || key === "u" || key === "U") { event.preventDefault(); undo(); return; }
    if (page.kind === "pairs") {
      if (key === "ArrowLeft" || key === "1") { event.preventDefault(); choose(1); }
      else if (key === "ArrowRight" || key === "2") { event.preventDefault(); choose(2); }
    } else if (/^[1-9]$/.test(key) && document.querySelector(`.level[data-value="${key}"]`)) {
      event.preventDefault();
      choose(Number(key));
    }
  });
  load();
})();
