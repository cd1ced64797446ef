// Patient form: live progress count, and one submission only (the server also guarantees it).
(function () {
  "use strict";
  var form = document.getElementById("alliance-form");
  if (!form) return;
  var progress = form.querySelector("[data-progress]");
  var button = form.querySelector("[data-submit]");
  function update() {
    var names = {};
    form.querySelectorAll("input[type=radio]:checked").forEach(function (input) { names[input.name] = true; });
    progress.textContent = Object.keys(names).length;
  }
  form.addEventListener("change", update);
  form.addEventListener("submit", function (event) {
    if (form.dataset.sent) { event.preventDefault(); return; }
    form.dataset.sent = "1";
    button.setAttribute("aria-disabled", "true");
    button.classList.add("sending");
  });
  update();
  var summary = document.getElementById("error-summary");
  if (summary) summary.focus();
})();
// A risk answer (PHQ-9 item 9 above "Not at all") shows the clinic's crisis text at once, before
// the form is sent; the thank-you page shows it again and the therapist is told when it is sent.
(function () {
  "use strict";
  var crisis = document.getElementById("crisis");
  if (!crisis || !crisis.hasAttribute("hidden")) return;
  var risky = document.querySelectorAll("fieldset[data-risk] input[type=radio]");
  function update() {
    var show = false;
    risky.forEach(function (input) { if (input.checked && input.value !== input.closest("fieldset").querySelector("input").value) show = true; });
    crisis.hidden = !show;
  }
  risky.forEach(function (input) { input.addEventListener("change", update); });
  update();
})();
