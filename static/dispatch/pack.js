/* The packing screen with a USB scanner (it types the barcode and presses Enter): the scan field keeps focus,
   scans are sent one after the other (none dropped while one is in flight), and every answer is loud: a green or
   red banner and a sound (a short high beep for a right item, a low buzz for anything else). Without JavaScript
   the forms still post and the page reloads. */
(function () {
  "use strict";

  var audio = null;
  // Tests and the curious can see what was played; a tablet without sound still shows the banner.
  window.__packSounds = window.__packSounds || [];

  function audioContext() {
    if (audio) { return audio; }
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) { return null; }
    try { audio = new Context(); } catch (err) { audio = null; }
    return audio;
  }

  function tone(kind) {
    window.__packSounds.push(kind);
    document.body.setAttribute("data-last-sound", kind);
    var ctx = audioContext();
    if (!ctx) { return; }
    try {
      if (ctx.state === "suspended") { ctx.resume(); }
      var osc = ctx.createOscillator();
      var gain = ctx.createGain();
      var now = ctx.currentTime;
      var length = kind === "ok" ? 0.12 : 0.45;
      osc.type = kind === "ok" ? "sine" : "square";
      osc.frequency.value = kind === "ok" ? 1320 : 110;
      gain.gain.setValueAtTime(kind === "ok" ? 0.25 : 0.35, now);
      gain.gain.exponentialRampToValueAtTime(0.001, now + length);
      osc.connect(gain);
      gain.connect(ctx.destination);
      osc.start(now);
      osc.stop(now + length + 0.02);
    } catch (err) { /* no audio: the banner still says it */ }
    if (kind !== "ok" && navigator.vibrate) { navigator.vibrate(300); }
  }

  // Browsers allow sound only after a gesture: the scanner's first key press is one.
  document.addEventListener("keydown", function () { audioContext(); }, { once: true });
  document.addEventListener("pointerdown", function () { audioContext(); }, { once: true });

  var form = document.querySelector("form[data-pack-scan]");
  var input = form ? form.querySelector("[data-scan-input]") : null;

  function refocus() {
    if (input && document.activeElement !== input) { input.focus(); }
  }

  function typing(el) {
    return el && el !== input && el.matches && el.matches("input, select, textarea");
  }

  function shake() {
    if (!input) { return; }
    input.classList.remove("scan-refused");
    void input.offsetWidth; // restart the animation
    input.classList.add("scan-refused");
  }

  function announce(status) {
    var banner = document.querySelector("#pack-live [data-scan-feedback]");
    var result = banner ? banner.getAttribute("data-result") : "";
    if (status >= 400 || (result && result !== "ok")) {
      tone("bad");
      shake();
    } else if (result === "ok") {
      input.classList.remove("scan-refused");
      tone("ok");
    }
  }

  if (form && input && window.htmx) {
    var csrf = form.querySelector("[name=csrfmiddlewaretoken]");
    var queue = Promise.resolve();
    var pending = 0;
    var lastStatus = 0;

    document.addEventListener("htmx:afterRequest", function (event) {
      var config = event.detail.requestConfig || {};
      if (config.path === form.action || config.path === form.getAttribute("action")) {
        lastStatus = event.detail.xhr ? event.detail.xhr.status : 0;
      }
    });

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      // Take the scan now and clear the field at once, so that the next one can be typed while this one is sent.
      var code = input.value.trim();
      input.value = "";
      refocus();
      if (!code) { return; }
      pending += 1;
      form.classList.add("is-busy");
      queue = queue.then(function () {
        lastStatus = 0;
        return window.htmx.ajax("POST", form.getAttribute("action"), {
          target: "#pack-live",
          swap: "outerHTML",
          values: { code: code, csrfmiddlewaretoken: csrf ? csrf.value : "" }
        }).then(function () { announce(lastStatus); });
      }).catch(function () { tone("bad"); /* app.js says what failed */ }).then(function () {
        pending -= 1;
        if (!pending) { form.classList.remove("is-busy"); }
      });
    });

    // After any swap (a scan, the Packed gate opening, an override), focus goes back to the scan field unless
    // the packer is typing somewhere else (weights, a reason).
    document.addEventListener("htmx:afterSettle", function () {
      if (!typing(document.activeElement)) { refocus(); }
    });
    document.addEventListener("click", function (event) {
      if (!event.target.closest("input, select, textarea, button, a, summary, label, details")) { refocus(); }
    });
    refocus();
  }

  // "Next order": Enter works from anywhere on the page that is not a field, as autofocus may be lost.
  var next = document.querySelector("[data-next-order]");
  if (next && !form) {
    if (!typing(document.activeElement)) { next.focus(); }
    document.addEventListener("keydown", function (event) {
      if (event.key !== "Enter" || event.defaultPrevented) { return; }
      var active = document.activeElement;
      if (active && active !== document.body && active !== next) { return; }
      event.preventDefault();
      next.click();
    });
  }
})();
