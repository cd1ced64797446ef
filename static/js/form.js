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
