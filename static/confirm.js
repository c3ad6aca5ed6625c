// The confirmation link's page sends its own form, so a reader needs no second click. The state change is a
// POST, which link-scanning mail filters don't make; the button stays as the fallback without JavaScript.
(function () {
  "use strict";
  function submit() {
    var form = document.querySelector("form[data-auto-submit]");
    if (!form || form.dataset.sent) return;
    form.dataset.sent = "1";
    var status = document.getElementById("confirm-status");
    if (status) status.textContent = "Confirming…";
    form.submit();
  }
  function whenVisible() {
    if (document.visibilityState === "hidden") {
      document.addEventListener("visibilitychange", whenVisible, { once: true });
    } else {
      submit();
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", whenVisible);
  } else {
    whenVisible();
  }
})();
