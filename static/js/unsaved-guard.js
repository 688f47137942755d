// Warn before leaving a form with unsaved input: <form data-unsaved-guard>. Leaving means
// a link, reload, back or closing the tab; saving the form itself does not ask. The check
// runs when the page is left, comparing each field with the value the page was served with,
// so input typed before this (deferred or slow) script ran counts too. A form the server
// sent back after a refused save carries data-unsaved="1": all of it is still unsaved.
(function () {
  "use strict";
  var forms = document.querySelectorAll("form[data-unsaved-guard]");
  if (!forms.length) { return; }
  var leaving = null;  // the guarded form being submitted, if any

  function changed(field) {
    if (!field.name || field.disabled) { return false; }
    var type = (field.type || "").toLowerCase();
    if (type === "hidden" || type === "submit" || type === "button") { return false; }
    if (type === "checkbox" || type === "radio") { return field.checked !== field.defaultChecked; }
    if (type === "file") { return field.files && field.files.length > 0; }
    if (field.tagName === "SELECT") {
      var options = Array.prototype.slice.call(field.options);
      var marked = options.some(function (option) { return option.defaultSelected; });
      return options.some(function (option, index) {
        // With no option marked, a single select starts on its first option.
        var initially = marked ? option.defaultSelected : index === 0 && !field.multiple;
        return option.selected !== initially;
      });
    }
    return field.value !== field.defaultValue;
  }

  function unsaved(form) {
    if (form.dataset.unsaved === "1") { return true; }
    return Array.prototype.some.call(form.elements, changed);
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches || !form.matches("form[data-unsaved-guard]")) { return; }
    leaving = form;
    // Another handler may still cancel this submit (a confirm answered Cancel).
    setTimeout(function () { if (event.defaultPrevented) { leaving = null; } }, 0);
  });

  window.addEventListener("beforeunload", function (event) {
    var pending = Array.prototype.some.call(forms, function (form) {
      return form !== leaving && unsaved(form);
    });
    if (!pending) { return undefined; }
    event.preventDefault();
    event.returnValue = "";  // older browsers need a value to ask
    return "";
  });

  // Back from the page after saving (bfcache): the guard starts afresh.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) { leaving = null; }
  });
})();
