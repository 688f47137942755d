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

  function submitFor(field) {
    if (field.form.requestSubmit) {
      field.form.requestSubmit();
    } else {
      field.form.submit();
    }
  }

  document.addEventListener("change", function (event) {
    var field = event.target.closest("[data-autosubmit]");
    if (field && field.form) {
      submitFor(field);
    }
  });

  // This script is deferred: a choice made while the page was still loading (a quick hand on a
  // slow tablet) fired its change event before the listener above existed. Submit it now.
  // The page's own choice is the option marked selected, else the first one enabled.
  function pageChoice(field) {
    var marked = -1;
    var firstEnabled = -1;
    Array.prototype.forEach.call(field.options, function (option, index) {
      if (option.defaultSelected) {
        marked = index;
      }
      if (firstEnabled < 0 && !option.disabled) {
        firstEnabled = index;
      }
    });
    return marked >= 0 ? marked : firstEnabled;
  }

  document.querySelectorAll("select[data-autosubmit]").forEach(function (field) {
    if (field.form && !field.multiple && field.selectedIndex !== pageChoice(field)) {
      submitFor(field);
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
