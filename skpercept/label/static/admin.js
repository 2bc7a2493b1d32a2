// The admin page: make a private link for a new labeller (a JSON POST with the page's CSRF token).
(function () {
  "use strict";
  const page = document.body.dataset;
  document.getElementById("add-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = document.getElementById("new-labeller").value;
    const response = await fetch(page.add, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": page.csrf },
      body: JSON.stringify({ labeller: name }),
      credentials: "same-origin",
    });
    const answer = await response.json();
    const out = document.getElementById("new-link");
    out.textContent = response.ok ? `${answer.labeller}: ${answer.link} (shown once: send it to them)` : answer.error;
  });
})();
