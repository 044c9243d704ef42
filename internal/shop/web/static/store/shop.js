"use strict";
// The shop's only script (the CSP allows no inline one). A CSP violation
// is written to the console, where a browser flow's console.errors sees it.
document.addEventListener("securitypolicyviolation", function (e) {
  console.error("CSP violation: " + e.violatedDirective + " blocked " + e.blockedURI);
});

// The confirmation page follows its order until it settles: a paid order
// is confirmed by the bank a moment later. After about 5 s it stops and
// says so; data-final marks that the page says its last word.
(function () {
  var el = document.getElementById("order-status");
  if (!el || el.dataset.final) {
    return;
  }
  var tries = 0;
  var maxTries = 20;
  function show(o, last) {
    el.dataset.status = o.status;
    el.textContent = o.message;
    if (last) {
      if (o.status === "processing") {
        el.textContent = "Your payment is still processing. We will email you when it is complete.";
      }
      el.dataset.final = "true";
    }
  }
  function poll() {
    tries++;
    fetch(el.dataset.poll, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) {
          throw new Error("order status: HTTP " + r.status);
        }
        return r.json();
      })
      .then(function (o) {
        var settled = o.status === "confirmed" || o.status === "failed" || o.status === "cancelled";
        show(o, settled || tries >= maxTries);
        if (!settled && tries < maxTries) {
          setTimeout(poll, 250);
        }
      })
      .catch(function (err) {
        console.error(String(err));
        if (tries < maxTries) {
          setTimeout(poll, 250);
        }
      });
  }
  setTimeout(poll, 250);
})();
