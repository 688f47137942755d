// Small page behaviours hooked by data- attributes, since the Content-Security-Policy allows
// no inline on...= handlers. Every page works without them: filters have a submit button in
// <noscript>, and a form with data-confirm simply submits.
//   <select data-autosubmit>            submits its form when changed
//   <form data-confirm="Question?">     asks before submitting; Cancel keeps the page
//   <button data-print hidden>          opens the browser's print dialog (shown by this script)
(function () {
  "use strict";

  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.hidden = false;
  });

  document.addEventListener("change", function (event) {
    var field = event.target.closest("[data-autosubmit]");
    if (field && field.form) {
      if (field.form.requestSubmit) {
        field.form.requestSubmit();
      } else {
        field.form.submit();
      }
    }
  });

  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });

  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-print]")) {
      window.print();
    }
  });
})();
