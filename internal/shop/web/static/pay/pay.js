"use strict";
// The hosted page's script: it mounts the card widget and submits the
// form when the pay button is pressed (the button does nothing without it).
document.addEventListener("securitypolicyviolation", function (e) {
  console.error("CSP violation: " + e.violatedDirective + " blocked " + e.blockedURI);
});

(function () {
  var form = document.getElementById("pay-form");
  var consent = document.getElementById("consent-accept");
  if (consent) {
    consent.addEventListener("click", function () {
      document.getElementById("consent").remove();
    });
  }
  if (!form) {
    return;
  }
  var widgets = {
    card: {
      mount: function (f) {
        return {
          valid: function () {
            return /^[0-9]{12,19}$/.test(f.elements.card.value.replace(/\s+/g, ""));
          },
        };
      },
    },
  };
  // Under the sandbox's pay_script_error fault the page asks for a widget
  // this release does not have: TypeError, and the button stays dead.
  var card = widgets[form.dataset.widget].mount(form);
  document.getElementById("pay").addEventListener("click", function () {
    var hint = document.getElementById("card-hint");
    if (!card.valid()) {
      hint.textContent = "Enter a card number of 12 to 19 digits.";
      return;
    }
    form.elements.card.value = form.elements.card.value.replace(/\s+/g, "");
    hint.textContent = "";
    form.submit();
  });
})();
