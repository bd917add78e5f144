// Progressive enhancement shared by every page: move focus to an error summary so that
// screen reader and keyboard users hear the problem first.
(function () {
  "use strict";
  var summary = document.querySelector("[data-autofocus]");
  if (summary) { summary.focus(); }
})();
