// Re-check the safety rules as the session's parameters change, before Save: the server
// renders the findings for the values typed so far and they replace the findings block.
// Without this script the page works as before (the rules run again on Save).
(function () {
  var box = document.getElementById("live-findings");
  var form = document.getElementById("session-log");
  if (!box || !form || !box.dataset.url || !window.fetch || !window.FormData) { return; }
  var PARAMETER = /^t\d+-/;  // the log form's parameter fields: t<row id>-<code>
  var latest = 0;

  function payload() {
    var sent = new FormData();
    new FormData(form).forEach(function (value, name) {
      if (typeof value !== "string") { return; }  // files stay out
      if (name === "csrfmiddlewaretoken" || PARAMETER.test(name)) { sent.append(name, value); }
    });
    return sent;
  }

  function keepReasons(fragment) {
    // Override reasons already written survive the swap (same rule, same field name).
    box.querySelectorAll("textarea[name]").forEach(function (old) {
      var fresh = fragment.querySelector("textarea[name='" + CSS.escape(old.name) + "']");
      if (fresh && old.value) { fresh.value = old.value; }
    });
  }

  function refresh() {
    var request = ++latest;
    box.setAttribute("aria-busy", "true");
    fetch(box.dataset.url, {
      method: "POST",
      body: payload(),
      credentials: "same-origin",
      headers: { "X-Requested-With": "fetch" },
    })
      .then(function (response) {
        if (!response.ok) { throw new Error(response.status); }
        return response.text();
      })
      .then(function (html) {
        if (request !== latest) { return; }  // an older answer arriving late
        var fragment = document.createElement("div");
        fragment.innerHTML = html;  // server-rendered, escaped by Django's templates
        keepReasons(fragment);
        box.replaceChildren.apply(box, Array.prototype.slice.call(fragment.childNodes));
      })
      .catch(function () { /* keep what is shown; Save checks the rules anyway */ })
      .finally(function () {
        if (request === latest) { box.removeAttribute("aria-busy"); }
      });
  }

  form.addEventListener("change", function (event) {
    if (event.target && event.target.name && PARAMETER.test(event.target.name)) { refresh(); }
  });
})();
