// The wallet waiting page: asks the broker every two seconds whether the wallet has answered,
// then continues. Without JavaScript the "I have answered" link does the same.
(function () {
  var el = document.querySelector("[data-poll]");
  if (!el) return;
  var poll = el.getAttribute("data-poll");
  var next = el.getAttribute("data-next");
  function tick() {
    fetch(poll, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.json(); })
      .then(function (j) {
        if (j.status === "answered") { window.location.assign(next); }
        else if (j.status === "waiting") { setTimeout(tick, 2000); }
      })
      .catch(function () { setTimeout(tick, 5000); });
  }
  setTimeout(tick, 2000);
})();
