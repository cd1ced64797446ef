// While an export is queued or running, refresh the jobs table every few seconds (no page reload).
(function () {
  "use strict";
  function poll() {
    var table = document.getElementById("jobs");
    if (!table || !table.hasAttribute("data-running")) return;
    setTimeout(function () {
      fetch(window.location.href, { credentials: "same-origin" })
        .then(function (r) { return r.text(); })
        .then(function (html) {
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("jobs");
          if (fresh) { table.replaceWith(fresh); poll(); }
        });
    }, 3000);
  }
  poll();
})();
