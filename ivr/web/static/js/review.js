// The review page's keyboard loop (progressive enhancement: without it the page is a form
// and an <audio> player). Outside the text box: Space plays or pauses (playing again goes
// back 2 s), [ and ] change the speed by 0.25 (0.5–3, pitch kept), r replays the last
// 5 s, digits 1–9 toggle the tag with that key, e edits the text, Enter saves as reviewed
// and opens the next answer, s saves as needing a second look. In the text box keys are
// text: typing pauses the playback, Escape leaves the box, Ctrl+Enter saves.
(function () {
  "use strict";
  var audio = document.querySelector("[data-review-audio]");
  var form = document.querySelector("[data-review-form]");
  if (!audio || !form) { return; }
  var home = document.querySelector("[data-review-home]");
  var live = document.querySelector("[data-review-live]");
  var speedShown = document.querySelector("[data-review-speed]");
  var text = form.querySelector("textarea");
  var saveButton = form.querySelector("[data-review-save]");
  var secondButton = form.querySelector("[data-review-second]");
  var words = Array.prototype.slice.call(document.querySelectorAll(".words .word"));
  var current = null;
  var MIN_RATE = 0.5, MAX_RATE = 3.0, STEP = 0.25;

  function say(key, value) {
    if (!live) { return; }
    var message = live.getAttribute("data-msg-" + key) || "";
    live.textContent = message.replace("%s", value === undefined ? "" : value);
  }

  function setRate(rate) {
    rate = Math.min(MAX_RATE, Math.max(MIN_RATE, Math.round(rate / STEP) * STEP));
    audio.preservesPitch = true;
    audio.webkitPreservesPitch = true;
    audio.playbackRate = rate;
    audio.defaultPlaybackRate = rate;
    if (speedShown) { speedShown.textContent = rate.toFixed(2); }
    try { window.sessionStorage.setItem("ivr-review-speed", String(rate)); } catch (e) { /* private mode */ }
    return rate;
  }

  function play() {
    var started = audio.play();
    if (started && started.catch) { started.catch(function () { say("error"); }); }
  }

  function toggle() {
    if (audio.paused) {
      if (audio.currentTime > 0) { audio.currentTime = Math.max(0, audio.currentTime - 2); }
      play();
      say("playing");
    } else {
      audio.pause();
      say("paused");
    }
  }

  function replay() {
    audio.currentTime = Math.max(0, audio.currentTime - 5);
    play();
    say("replay");
  }

  function toggleTag(digit) {
    var box = form.querySelector('input[type=checkbox][data-key="' + digit + '"]');
    if (!box) { return; }
    box.checked = !box.checked;
    var label = form.querySelector('label[for="' + box.id + '"]');
    var name = label ? label.textContent.replace(/^\s*\d\s*/, "").trim() : digit;
    say(box.checked ? "tag-on" : "tag-off", name);
  }

  function submit(button) {
    audio.pause();
    if (form.requestSubmit) { form.requestSubmit(button); } else { button.click(); }
  }

  function highlight() {
    var t = audio.currentTime;
    var found = null;
    for (var i = 0; i < words.length; i++) {
      var start = parseFloat(words[i].getAttribute("data-start"));
      var end = parseFloat(words[i].getAttribute("data-end"));
      if (t >= start && t < end) { found = words[i]; break; }
    }
    if (found !== current) {
      if (current) { current.classList.remove("current"); }
      if (found) { found.classList.add("current"); }
      current = found;
    }
  }

  audio.addEventListener("timeupdate", highlight);
  audio.addEventListener("seeked", highlight);
  audio.addEventListener("ended", function () { say("ended"); });
  words.forEach(function (word) {
    word.addEventListener("click", function () {
      audio.currentTime = parseFloat(word.getAttribute("data-start")) || 0;
      play();
    });
  });
  if (text) {
    text.addEventListener("input", function () { if (!audio.paused) { audio.pause(); } });
  }

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    var tag = target && target.tagName ? target.tagName.toLowerCase() : "";
    if (target === text) {
      if (event.key === "Escape") {
        event.preventDefault();
        if (home) { home.focus(); }
      } else if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        submit(saveButton);
      }
      return;
    }
    if (event.ctrlKey || event.altKey || event.metaKey) { return; }
    if (tag === "input" || tag === "select" || tag === "textarea" || target.isContentEditable) {
      return;
    }
    // On a button or link, Space and Enter keep their own meaning (press it).
    var control = tag === "button" || tag === "a" || tag === "summary" || tag === "audio";
    var key = event.key;
    if (key === " " || key === "Spacebar") {
      if (control) { return; }
      event.preventDefault();
      toggle();
    } else if (key === "Enter") {
      if (control) { return; }
      event.preventDefault();
      submit(saveButton);
    } else if (key === "[") {
      event.preventDefault();
      say("speed", setRate(audio.playbackRate - STEP).toFixed(2));
    } else if (key === "]") {
      event.preventDefault();
      say("speed", setRate(audio.playbackRate + STEP).toFixed(2));
    } else if (key === "r" || key === "R") {
      event.preventDefault();
      replay();
    } else if (/^[1-9]$/.test(key)) {
      event.preventDefault();
      toggleTag(key);
    } else if (key === "e" || key === "E") {
      if (text) {
        event.preventDefault();
        text.focus();
      }
    } else if (key === "s" || key === "S") {
      event.preventDefault();
      submit(secondButton);
    }
  });

  var saved = 1;
  try { saved = parseFloat(window.sessionStorage.getItem("ivr-review-speed")) || 1; } catch (e) { saved = 1; }
  setRate(saved);
  if (home && !document.querySelector("[data-autofocus]")) { home.focus(); }
})();
