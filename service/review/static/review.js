// Keyboard shortcuts of the trace page (the forms work without this file).
// j/k: next/previous candidate; y/n/u: relevant / not relevant / clear for it;
// a/e/r: verdict accepted / edited / rejected; m: missing documents; t: note; s: save.
"use strict";
(function () {
  var rows = [];
  var current = -1;

  function focusRow(i) {
    if (!rows.length) { return; }
    if (current >= 0) { rows[current].classList.remove("current"); }
    current = Math.max(0, Math.min(rows.length - 1, i));
    rows[current].classList.add("current");
    rows[current].scrollIntoView({ block: "nearest" });
  }

  function mark(cls) {
    if (current < 0) { focusRow(0); }
    var input = rows[current] && rows[current].querySelector("input." + cls);
    if (input) { input.checked = true; }
  }

  function verdict(v) {
    var input = document.getElementById("verdict-" + v);
    if (input) { input.checked = true; }
  }

  document.addEventListener("DOMContentLoaded", function () {
    rows = Array.prototype.slice.call(document.querySelectorAll("tr.candidate"));
    var form = document.getElementById("judge");
    if (!form) { return; }
    document.addEventListener("keydown", function (ev) {
      var tag = ev.target && ev.target.tagName;
      if (tag === "INPUT" && ev.target.type !== "radio" || tag === "TEXTAREA" || tag === "SELECT") { return; }
      if (ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
      var handled = true;
      switch (ev.key) {
        case "j": focusRow(current + 1); break;
        case "k": focusRow(current - 1); break;
        case "y": mark("relevant"); break;
        case "n": mark("not-relevant"); break;
        case "u": mark("unset"); break;
        case "a": verdict("accepted"); break;
        case "e": verdict("edited"); break;
        case "r": verdict("rejected"); break;
        case "m": document.getElementById("missing").focus(); break;
        case "t": document.getElementById("note").focus(); break;
        case "s": form.requestSubmit(); break;
        default: handled = false;
      }
      if (handled) { ev.preventDefault(); }
    });
  });
})();
