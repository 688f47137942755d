// Accessible names the admin's own widgets leave out (loaded by templates/admin/base_site.html).
//  - Autocomplete fields (select2): the combobox and its shown value are named by the
//    field's <label>, so an empty choice is not a nameless control.
//  - A multiple autocomplete's search box is named by the field's label too.
//  - Date-and-time fields: the date box and the time box are named "<Field>: date/time"
//    (the admin writes "Date:" and "Time:" as plain text beside them).
//  - The two-list permission/group chooser: its search icons carry aria-label, which needs a
//    role to be allowed (role="img").
// Widgets appear after this script (select2 on jQuery's ready, inline rows on "Add another"),
// so the names are set again whenever the page changes.
(function () {
  "use strict";

  function labelFor(select) {
    var label = select.id && document.querySelector('label[for="' + select.id + '"]');
    if (!label) {
      return null;
    }
    if (!label.id) {
      label.id = select.id + "-label";
    }
    return label;
  }

  function nameAutocompletes() {
    document.querySelectorAll("select.admin-autocomplete").forEach(function (select) {
      var label = labelFor(select);
      var container = select.nextElementSibling;
      if (!label || !container || !container.classList.contains("select2")) {
        return;
      }
      var shown = container.querySelector(".select2-selection__rendered");
      var box = container.querySelector(".select2-selection");
      if (shown && shown.id && box && !box.dataset.named) {
        box.setAttribute("aria-labelledby", label.id + " " + shown.id);
        box.dataset.named = "1";
      }
      var name = label.textContent.replace(/:\s*$/, "").trim();
      if (shown && !shown.getAttribute("aria-label")) {
        shown.setAttribute("aria-label", name);
      }
      container.querySelectorAll(".select2-search__field:not([aria-label])").forEach(function (box) {
        box.setAttribute("aria-label", name);
      });
    });
    document.querySelectorAll("p.datetime").forEach(function (group) {
      var row = group.closest(".form-row, .fieldBox, fieldset");
      var heading = row && row.querySelector("label, legend");
      var name = heading ? heading.textContent.replace(/:\s*$/, "").trim() : "";
      var inputs = group.querySelectorAll("input:not([type=hidden])");
      ["date", "time"].forEach(function (part, index) {
        if (inputs[index] && !inputs[index].getAttribute("aria-label")) {
          inputs[index].setAttribute("aria-label", (name ? name + ": " : "") + part);
        }
      });
    });
    document.querySelectorAll(".search-label-icon[aria-label]:not([role])").forEach(function (icon) {
      icon.setAttribute("role", "img");
    });
  }

  function start() {
    nameAutocompletes();
    new MutationObserver(nameAutocompletes).observe(document.body, {
      childList: true,
      subtree: true,
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
