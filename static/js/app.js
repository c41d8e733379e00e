/* Small behaviours of the back office. htmx does the live parts; this file only reports failures and copies. */
(function () {
  "use strict";

  function fadeLater(item) {
    if (item.dataset.fading) { return; }
    item.dataset.fading = "1";
    window.setTimeout(function () { item.remove(); }, 8000);
  }

  function toast(message) {
    var box = document.getElementById("toasts");
    if (!box) { window.alert(message); return; }
    var item = document.createElement("div");
    item.className = "toast";
    item.setAttribute("role", "alert");
    item.textContent = message;
    box.appendChild(item);
    fadeLater(item);
  }

  // The server sends some answers (a refused permission) as toasts retargeted into #toasts.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "toasts") {
      event.detail.target.querySelectorAll(".toast").forEach(fadeLater);
    }
  });

  // 4xx answers carry a partial with the reason in words and are swapped (see the htmx-config meta tag);
  // a 5xx or a lost connection is not, so say so rather than fail silently.
  document.addEventListener("htmx:responseError", function (event) {
    var status = event.detail.xhr ? event.detail.xhr.status : 0;
    toast("The server could not complete this (error " + status + "). Nothing was changed; please try again.");
  });
  document.addEventListener("htmx:sendError", function () {
    toast("No connection to the server. Check the network and try again.");
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy-target]");
    if (!button) { return; }
    var source = document.querySelector(button.getAttribute("data-copy-target"));
    if (!source) { return; }
    var text = source.textContent.trim();
    var done = function () {
      var label = button.textContent;
      button.textContent = "Copied";
      window.setTimeout(function () { button.textContent = label; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { toast("Copy failed: select the address and copy it."); });
    } else {
      var range = document.createRange();
      range.selectNodeContents(source);
      var selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      try { document.execCommand("copy"); done(); } catch (err) { toast("Select the address and copy it."); }
    }
  });
})();
