/* "Get rates" on the Packed and rebook forms: a quote's "Use" button puts its service code in the form's service
   field. Without JavaScript the quotes still show their codes, which can be typed. */
(function () {
  "use strict";

  document.addEventListener("click", function (event) {
    var pick = event.target.closest ? event.target.closest("[data-rate-pick]") : null;
    if (!pick) { return; }
    var form = pick.closest("form");
    var field = form ? form.querySelector("[name=service]") : null;
    if (!field) { return; }
    field.value = pick.getAttribute("data-rate-pick");
    field.dispatchEvent(new Event("change", { bubbles: true }));
    var list = pick.closest("[data-rates]");
    if (list) {
      list.querySelectorAll("[data-rate-pick]").forEach(function (button) {
        button.setAttribute("aria-pressed", button === pick ? "true" : "false");
        button.textContent = button === pick ? "Chosen" : "Use";
      });
    }
  });
})();
