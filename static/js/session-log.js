// The session log page: parameters changed since last time are highlighted as they are
// typed; each instrument shows a live total; adverse events sit behind "Add adverse event";
// after a refused save the error summary takes focus and its links focus their field.
// Without this script the page still works: the server computes every total, the blank
// adverse event rows are in a <details>, and the summary is focused by its autofocus.
(function () {
  "use strict";
  var form = document.getElementById("session-log");
  if (!form) { return; }

  // --- parameters changed since last time --------------------------------------------------
  form.querySelectorAll(".param").forEach(function (wrapper) {
    var input = wrapper.querySelector("input, select");
    if (!input || !wrapper.dataset.previous) { return; }
    var update = function () {
      wrapper.classList.toggle("param-changed", input.value !== wrapper.dataset.previous);
    };
    input.addEventListener("input", update);
    input.addEventListener("change", update);
  });

  // --- live totals ---------------------------------------------------------------------------
  // Each item carries its points per value as "value:points" steps (plans/scales.py
  // Instrument.points); the total is the lowest total plus each item's points.
  function steps(item) {
    return item.dataset.steps.split(",").map(function (pair) {
      var parts = pair.split(":");
      return [parseInt(parts[0], 10), parseInt(parts[1], 10)];
    });
  }

  function itemValue(item) {
    var checked = item.querySelector("input[type=radio]:checked");
    if (checked) { return checked.value; }
    var input = item.querySelector("input:not([type=radio])");
    return input ? input.value.trim() : "";
  }

  function pointsFor(item, text) {
    if (!/^-?\d+$/.test(text)) { return null; }
    var value = parseInt(text, 10);
    var table = steps(item);
    var last = table[table.length - 1];
    var first = table[0];
    // Beyond the item's range: no total (the server names the range on save).
    var input = item.querySelector("input:not([type=radio])");
    if (value < first[0] || (input && input.max !== "" && value > parseInt(input.max, 10))) {
      return null;
    }
    if (!input && value > last[0]) { return null; }
    var points = 0;
    table.forEach(function (step) { if (value >= step[0]) { points = step[1]; } });
    return points;
  }

  function total(box) {
    var output = box.querySelector("output[data-total]");
    if (!output) { return; }
    var items = box.querySelectorAll("[data-item]");
    var sum = parseInt(output.dataset.min, 10);
    var filled = 0;
    var wrong = false;
    items.forEach(function (item) {
      var text = itemValue(item);
      if (text === "") { return; }
      filled += 1;
      var points = pointsFor(item, text);
      if (points === null) { wrong = true; } else { sum += points; }
    });
    var shown;
    if (filled === 0) {
      shown = "not scored";
    } else if (wrong) {
      shown = "check the values";
    } else if (filled < items.length) {
      shown = filled + " of " + items.length + " items";
    } else {
      shown = String(sum);
    }
    if (output.textContent !== shown) { output.textContent = shown; }
  }

  var boxes = form.querySelectorAll("[data-instrument]");
  boxes.forEach(total);  // also counts choices made before this script ran
  form.addEventListener("change", function (event) {
    var box = event.target.closest && event.target.closest("[data-instrument]");
    if (box) { total(box); }
  });
  form.addEventListener("input", function (event) {
    var box = event.target.closest && event.target.closest("[data-instrument]");
    if (box) { total(box); }
  });

  // --- adverse events behind "Add adverse event" -------------------------------------------
  var add = document.getElementById("add-ae");
  var blank = document.getElementById("ae-blank");
  var rows = document.getElementById("ae-forms");
  var rowTemplate = document.getElementById("ae-empty");
  var totalForms = form.querySelector("input[name='ae-TOTAL_FORMS']");
  var maxForms = form.querySelector("input[name='ae-MAX_NUM_FORMS']");
  var status = document.getElementById("ae-status");

  function fields(row) {
    return Array.prototype.slice.call(
      row.querySelectorAll("input:not([type=hidden]), select, textarea")
    );
  }

  // Typed: a field that differs from what the page was served with (an onset date is
  // filled in from the start, so "not empty" would not do).
  function typed(row) {
    return fields(row).some(function (field) {
      if (field.tagName === "SELECT") {
        return Array.prototype.some.call(field.options, function (option) {
          return option.selected !== option.defaultSelected;
        }) && field.selectedIndex !== 0;
      }
      return field.value !== field.defaultValue;
    });
  }

  // A cleared row holds what a new row holds (the onset date is today's), so that the
  // server sees an untouched row and skips it.
  function blankValue(field) {
    var name = "ae-__prefix__-" + field.name.replace(/^ae-\d+-/, "");
    var model = rowTemplate.content.querySelector("[name='" + name + "']");
    if (!model) { return ""; }
    if (model.tagName === "SELECT") {
      var chosen = model.querySelector("option[selected]");
      return chosen ? chosen.value : "";
    }
    return model.getAttribute("value") || "";
  }

  function reset(row) {
    fields(row).forEach(function (field) {
      field.value = blankValue(field);
      field.classList.remove("is-invalid");
      field.dispatchEvent(new Event("change", { bubbles: true }));
    });
  }

  function showClear(row) {
    var clear = row.querySelector(".ae-clear");
    if (clear) { clear.hidden = false; }
  }

  function startRow(row) {
    row.hidden = false;
    showClear(row);
    var first = row.querySelector("select, input, textarea");
    if (first) { first.focus(); }
    var legend = row.querySelector("legend");
    if (status && legend) { status.textContent = legend.textContent + " added."; }
  }

  if (add && blank && rows && rowTemplate && totalForms) {
    // The blank rows wait, hidden, in the list; a typed one (the browser's back button
    // keeps values) stays shown.
    blank.querySelectorAll("[data-ae-row]").forEach(function (row) {
      var started = typed(row);
      row.hidden = !started;
      if (started) { showClear(row); }
      rows.appendChild(row);
    });
    blank.remove();
    rows.querySelectorAll("[data-ae-row]:not([hidden])").forEach(showClear);
    add.hidden = false;

    add.addEventListener("click", function () {
      var waiting = rows.querySelector("[data-ae-row][hidden]");
      if (waiting) { startRow(waiting); return; }
      var index = parseInt(totalForms.value, 10);
      if (maxForms && index >= parseInt(maxForms.value, 10)) {
        if (status) { status.textContent = "No more adverse event rows on one session."; }
        return;
      }
      var html = rowTemplate.innerHTML
        .replace(/__prefix__/g, String(index))
        .replace(/__number__/g, String(index + 1));
      rows.insertAdjacentHTML("beforeend", html);
      totalForms.value = String(index + 1);
      startRow(rows.lastElementChild);
    });

    rows.addEventListener("click", function (event) {
      var clear = event.target.closest(".ae-clear");
      if (!clear) { return; }
      var row = clear.closest("[data-ae-row]");
      reset(row);
      row.hidden = true;
      add.focus();
      if (status) { status.textContent = "Adverse event cleared."; }
    });
  }

  // --- the error summary ---------------------------------------------------------------------
  var summary = document.querySelector("[data-error-summary]");
  if (summary) {
    if (document.activeElement !== summary) { summary.focus(); }
    summary.addEventListener("click", function (event) {
      var link = event.target.closest("a[data-error-link]");
      if (!link) { return; }
      var target = document.getElementById(link.getAttribute("href").slice(1));
      if (!target) { return; }
      event.preventDefault();
      var details = target.closest("details");
      if (details) { details.open = true; }
      target.hidden = false;
      // A choice or a group: its checked (else first) input; a field: itself.
      var field = target.matches("input, select, textarea")
        ? target
        : target.querySelector("input:checked, input:not([type=hidden]), select, textarea");
      (target.querySelector("legend") || target).scrollIntoView({ block: "start" });
      if (field) { field.focus({ preventScroll: true }); }
    });
  }
})();
