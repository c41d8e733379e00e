/* Stock-take by scanner: the scan field keeps focus, every scan is sent in order (none dropped while one is
   in flight), and a refused scan is loud. Without JavaScript the form still posts and the page reloads. */
(function () {
  "use strict";
  var form = document.querySelector("form[data-scan-form]");
  if (!form || !window.htmx) { return; }
  var input = form.querySelector("[data-scan-input]");
  var quantity = form.querySelector("[name=quantity]");
  var csrf = form.querySelector("[name=csrfmiddlewaretoken]");
  var queue = Promise.resolve();
  var pending = 0;

  function refocus() {
    if (document.activeElement !== input) { input.focus(); }
  }

  function beep() {
    try {
      var Context = window.AudioContext || window.webkitAudioContext;
      var ctx = new Context();
      var tone = ctx.createOscillator();
      tone.type = "square";
      tone.frequency.value = 220;
      tone.connect(ctx.destination);
      tone.start();
      tone.stop(ctx.currentTime + 0.3);
    } catch (err) { /* no audio: the red banner still says it */ }
    if (navigator.vibrate) { navigator.vibrate(250); }
    input.classList.remove("scan-refused");
    void input.offsetWidth; // restart the animation
    input.classList.add("scan-refused");
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    // Read the scan now and clear the field at once, so the next scan can be typed while this one is sent.
    var code = input.value.trim();
    var units = quantity && quantity.value ? quantity.value : "1";
    input.value = "";
    if (quantity) { quantity.value = "1"; }
    refocus();
    if (!code) { return; }
    pending += 1;
    form.classList.add("is-busy");
    queue = queue.then(function () {
      return window.htmx.ajax("POST", form.action, {
        target: "#count-sheet",
        swap: "outerHTML",
        values: { code: code, quantity: units, csrfmiddlewaretoken: csrf ? csrf.value : "" }
      });
    }).catch(function () { /* app.js reports the failure */ }).then(function () {
      pending -= 1;
      if (!pending) { form.classList.remove("is-busy"); }
    });
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    var xhr = event.detail.xhr;
    if (xhr && xhr.status >= 400 && document.getElementById("count-sheet")) { beep(); }
  });

  // After the sheet is replaced (a scan, a corrected count), focus goes back to the scan field.
  document.addEventListener("htmx:afterSettle", function () {
    var active = document.activeElement;
    if (!active || active === document.body) { refocus(); }
  });

  document.addEventListener("click", function (event) {
    if (!event.target.closest("input, select, textarea, button, a, summary, label")) { refocus(); }
  });
})();
