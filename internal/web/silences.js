(function () {
  var status = document.getElementById("silence-status");
  var tokenField = document.getElementById("silence-token");
  function say(msg) {
    if (status) {
      status.textContent = msg;
    }
  }
  function send(method, url, body) {
    var headers = {"Content-Type": "application/json"};
    if (tokenField && tokenField.value) {
      headers.Authorization = "Bearer " + tokenField.value;
    }
    return fetch(url, {method: method, headers: headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body)}).then(function (res) {
      if (res.ok) {
        location.reload();
        return;
      }
      return res.text().then(function (t) {
        var msg = t;
        try {
          msg = JSON.parse(t).error || t;
        } catch (e) {}
        say("Refused (HTTP " + res.status + "): " + msg);
      });
    }, function (err) {
      say("Could not reach the prober: " + err);
    });
  }
  var form = document.getElementById("silence-form");
  if (form) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var matchers = {};
      var parts = form.elements.matchers.value.split(/[,\n]/);
      for (var i = 0; i < parts.length; i++) {
        var p = parts[i].trim();
        if (p === "") {
          continue;
        }
        var eq = p.indexOf("=");
        if (eq < 1) {
          say("Each matcher is name=value, got: " + p);
          return;
        }
        matchers[p.slice(0, eq).trim()] = p.slice(eq + 1).trim();
      }
      say("Sending...");
      send("POST", "/api/v1/silences", {matchers: matchers, duration: form.elements.duration.value.trim(),
        comment: form.elements.comment.value, created_by: form.elements.created_by.value});
    });
  }
  var buttons = document.querySelectorAll("button[data-expire]");
  for (var j = 0; j < buttons.length; j++) {
    buttons[j].addEventListener("click", function (ev) {
      var id = ev.currentTarget.getAttribute("data-expire");
      say("Expiring " + id + "...");
      send("DELETE", "/api/v1/silences/" + encodeURIComponent(id));
    });
  }
  var js = document.querySelectorAll(".js-only");
  for (var k = 0; k < js.length; k++) {
    js[k].hidden = false;
  }
})();
