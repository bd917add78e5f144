// Live progress on a campaign's page: every few seconds, fetch the campaign's progress
// (JSON) and put each text into the element whose data-progress names its key. The page
// is complete without this script (the server renders the same numbers); this only keeps
// them current.
//
// Polling, not server-sent events: the UI is served by gunicorn's sync workers, where
// every open event stream would hold a whole worker for as long as a page stays open, and
// municipal networks put proxies in front that buffer or cut long-lived connections. A
// short GET every 2.5 s works through all of them and costs one small query set.
//
// The request says "X-Ivr-Poll: 1" so that it does not keep an idle session alive; when
// the session has ended (a redirect to the login page), polling stops and says so.
(function () {
  "use strict";
  var root = document.querySelector("[data-progress-url]");
  if (!root || !window.fetch) { return; }
  var url = root.getAttribute("data-progress-url");
  var live = document.getElementById("progress-announce");
  var stoppedNote = document.getElementById("progress-stopped");
  var lastAnnounce = root.getAttribute("data-announce") || "";
  var shownStatus = root.getAttribute("data-status") || "";
  var changedNote = document.getElementById("progress-status-changed");
  var failures = 0;
  var timer = null;
  var INTERVAL = 2500;

  function update(data) {
    var text = data.text || {};
    Object.keys(text).forEach(function (key) {
      var nodes = document.querySelectorAll('[data-progress="' + key + '"]');
      for (var i = 0; i < nodes.length; i += 1) {
        if (nodes[i].textContent !== text[key]) { nodes[i].textContent = text[key]; }
      }
    });
    var badge = document.querySelector('.status[data-progress="status"]');
    if (badge && data.status) { badge.className = "status status-" + data.status; }
    // The actions below were rendered for the status the page opened with.
    if (changedNote && data.status) { changedNote.hidden = data.status === shownStatus; }
    // Screen readers hear the status and the reason when they change, not every number.
    if (live && data.announce && data.announce !== lastAnnounce) {
      lastAnnounce = data.announce;
      live.textContent = data.announce;
    }
  }

  function stop() {
    if (timer !== null) { window.clearTimeout(timer); timer = null; }
    if (stoppedNote) { stoppedNote.hidden = false; }
  }

  function schedule() {
    timer = window.setTimeout(tick, INTERVAL);
  }

  function tick() {
    timer = null;
    if (document.hidden) { schedule(); return; }  // a background tab asks nothing
    fetch(url, {
      headers: { "X-Ivr-Poll": "1", "Accept": "application/json" },
      credentials: "same-origin",
      cache: "no-store",
      redirect: "manual"
    }).then(function (response) {
      var type = response.headers.get("Content-Type") || "";
      if (response.ok && type.indexOf("application/json") === 0) { return response.json(); }
      // Signed out, no longer a member, or the campaign is gone: no point asking again.
      var fatal = response.type === "opaqueredirect" || [401, 403, 404].indexOf(response.status) >= 0;
      throw { fatal: fatal };
    }).then(function (data) {
      failures = 0;
      update(data);
      schedule();
    }).catch(function (error) {
      failures += 1;
      if ((error && error.fatal) || failures >= 5) { stop(); } else { schedule(); }
    });
  }

  schedule();
})();
