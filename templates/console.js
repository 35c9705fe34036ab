// The console's only script: keyboard shortcuts and the lease countdown. Everything works
// without it. Shortcuts act on controls marked data-key; none fires while typing in a field.
(function () {
  "use strict";
  function typing(el) { return el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT" || el.isContentEditable); }
  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey || typing(document.activeElement)) return;
    if (ev.key === "?") {
      var d = document.getElementById("shortcuts");
      if (d) { d.open = !d.open; ev.preventDefault(); }
      return;
    }
    if (ev.key === "r") { var reason = document.getElementById("reason"); if (reason) { reason.focus(); ev.preventDefault(); } return; }
    var target = document.querySelector('[data-key="' + ev.key + '"]');
    if (!target) return;
    ev.preventDefault();
    if (target.type === "radio") { target.checked = true; target.focus(); } else { target.click(); }
  });
  var lease = document.querySelector(".lease[data-expires-ms]");
  if (lease) {
    var out = lease.parentNode.querySelector(".countdown");
    var end = parseInt(lease.getAttribute("data-expires-ms"), 10);
    var tick = function () {
      var left = Math.max(0, Math.round((end - Date.now()) / 1000));
      out.textContent = left > 0 ? "(" + Math.floor(left / 60) + ":" + ("0" + (left % 60)).slice(-2) + " left)" : "(lease expired)";
    };
    tick();
    setInterval(tick, 1000);
  }
})();
