setInterval(function () {
  var q = document.getElementById("q");
  if (q && (document.activeElement === q || q.value !== q.defaultValue)) {
    return;
  }
  location.reload();
}, 10000);
