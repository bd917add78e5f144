// The flow editor, progressively enhanced: after a step was added or moved, bring it into
// view and put the focus on it; warn before leaving the page with changes not saved.
// Everything works without this file.
(function () {
  "use strict";
  var form = document.getElementById("flow-editor");
  if (!form) { return; }
  var focus = form.getAttribute("data-focus");
  if (focus && !document.querySelector("[data-autofocus]")) {
    var step = document.getElementById(focus);
    if (step) { step.scrollIntoView(); step.focus(); }
  }
  var changed = form.hasAttribute("data-unsaved");
  form.addEventListener("input", function () { changed = true; });
  form.addEventListener("submit", function () { changed = false; });
  window.addEventListener("beforeunload", function (event) {
    if (changed) { event.preventDefault(); event.returnValue = ""; }
  });
})();
