// Follows a push request (or a device enrollment) without reloading the page: polls the
// session's status endpoint and, once the device has answered, presses the page's own
// "Check again" button, so the server decides exactly as it does without JavaScript.
(function () {
  "use strict";
  var box = document.querySelector("[data-push-status]");
  var button = document.getElementById("push-check");
  if (!box || !button || !window.fetch) { return; }
  var url = box.getAttribute("data-push-status");
  var tries = 0;
  function poll() {
    tries += 1;
    if (tries > 300) { return; }  // 10 minutes at most; the button still works
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : { status: "pending" }; })
      .then(function (body) {
        if (body.status === "pending") { window.setTimeout(poll, 2000); }
        else { button.click(); }
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 2000);
})();
