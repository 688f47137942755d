// The plan builder on one page: course rows added in place, "Use" and protocols fill them,
// sessions and interval follow the chosen treatment, and the calendar preview beside the form
// is re-rendered by the server as the form changes (no reload). Without JavaScript the same
// buttons submit the form and the server does each of these.
(function () {
  var form = document.getElementById("plan-builder");
  if (!form) return;
  var rows = document.getElementById("courses");
  var template = document.getElementById("course-template");
  var total = form.querySelector("input[name='courses-TOTAL_FORMS']");
  var maxRows = parseInt(form.querySelector("input[name='courses-MAX_NUM_FORMS']").value, 10);
  var status = document.getElementById("course-status");
  var title = form.querySelector("input[name='title']");
  var defaults = {};
  document.querySelectorAll("#treatment-defaults [data-treatment]").forEach(function (el) {
    defaults[el.dataset.treatment] = el.dataset;
  });

  function field(row, name) {
    return row.querySelector("[name$='-" + name + "']");
  }

  function say(text) {
    status.textContent = text;
  }

  function addRow() {
    var index = parseInt(total.value, 10);
    if (index >= maxRows) {
      say("At most " + maxRows + " courses on one plan.");
      return null;
    }
    var html = template.innerHTML
      .replace(/__prefix__/g, String(index))
      .replace(/__number__/g, String(index + 1));
    rows.insertAdjacentHTML("beforeend", html);
    total.value = String(index + 1);
    return rows.lastElementChild;
  }

  function emptyRow() {
    var all = rows.querySelectorAll(".course-row");
    for (var i = 0; i < all.length; i++) {
      var select = field(all[i], "treatment");
      if (select && !select.value) return all[i];
    }
    return addRow();
  }

  function setValue(input, value) {
    if (!input) return;
    input.value = value === undefined || value === null ? "" : value;
    input.dataset.typed = "";
  }

  function fill(row, course) {
    field(row, "treatment").value = course.treatment;
    setValue(field(row, "sessions_count"), course.sessions);
    setValue(field(row, "interval_days"), course.interval);
    setValue(field(row, "offset_days"), course.offset || "0");
    if (course.label !== undefined) setValue(field(row, "label"), course.label);
    row.querySelectorAll("[name*='-param_']").forEach(function (input) {
      var code = input.name.split("-param_")[1];
      input.value = (course.params && course.params[code]) || "";
    });
  }

  function show(row, text) {
    var select = field(row, "treatment");
    row.scrollIntoView({ block: "center" });
    select.focus();
    say(text);
  }

  // Sessions and interval follow the treatment unless the person typed them.
  rows.addEventListener("input", function (event) {
    if (event.target.matches("input")) event.target.dataset.typed = "1";
  });
  rows.addEventListener("change", function (event) {
    if (!event.target.matches("select[name$='-treatment']")) return;
    var usual = defaults[event.target.value];
    var row = event.target.closest(".course-row");
    if (!usual) return;
    ["sessions_count", "interval_days"].forEach(function (name) {
      var input = field(row, name);
      if (input && input.dataset.typed !== "1") {
        input.value = name === "sessions_count" ? usual.sessions : usual.interval;
      }
    });
  });

  document.getElementById("add-course").addEventListener("click", function (event) {
    event.preventDefault();
    var row = addRow();
    if (row) show(row, "Course " + total.value + " added.");
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest(".use-treatment");
    if (!button) return;
    var row = emptyRow();
    if (!row) return;
    fill(row, {
      treatment: button.dataset.treatment,
      sessions: button.dataset.sessions,
      interval: button.dataset.interval,
    });
    show(row, button.dataset.name + " added as course " + row.dataset.row + ".");
    refresh();
  });

  document.querySelectorAll(".apply-template").forEach(function (link) {
    link.addEventListener("click", function (event) {
      event.preventDefault();
      var box = link.parentElement.querySelector(".template-courses");
      var courses = box.querySelectorAll("[data-treatment]");
      var all = rows.querySelectorAll(".course-row");
      var first = null;
      for (var i = 0; i < courses.length; i++) {
        var row = all[i] || addRow();
        if (!row) break;
        var data = courses[i].dataset;
        var params = {};
        Object.keys(data).forEach(function (key) {
          if (key.indexOf("param") === 0 && key.length > 5) {
            var code = key.slice(5);
            params[code.charAt(0).toLowerCase() + code.slice(1).replace(/[A-Z]/g, function (c) {
              return "_" + c.toLowerCase();
            })] = data[key];
          }
        });
        fill(row, {
          treatment: data.treatment,
          sessions: data.sessions,
          interval: data.interval,
          offset: data.offset,
          label: data.label,
          params: params,
        });
        first = first || row;
      }
      for (var j = courses.length; j < all.length; j++) fill(all[j], { treatment: "" });
      if (title && (!title.value || title.dataset.auto === "1")) {
        title.value = box.dataset.name;
        title.dataset.auto = "0";
      }
      if (first) show(first, box.dataset.name + ": " + courses.length + " courses filled in.");
      refresh();
    });
  });

  // The title is made from the courses until the person types their own.
  if (title) {
    title.dataset.auto = title.value ? "0" : "1";
    title.addEventListener("input", function () {
      title.dataset.auto = title.value ? "0" : "1";
    });
  }

  var timer = null;
  var sent = 0;
  function refresh() {
    clearTimeout(timer);
    timer = setTimeout(function () {
      var data = new FormData(form);
      data.set("action", "preview");
      var mine = ++sent;
      fetch(form.dataset.previewUrl, {
        method: "POST",
        body: data,
        credentials: "same-origin",
        headers: { "X-Requested-With": "fetch" },
      })
        .then(function (response) {
          return response.ok ? response.text() : null;
        })
        .then(function (html) {
          if (html === null || mine !== sent) return; // a newer answer is on its way
          document.getElementById("builder-live").innerHTML = html;
          var preview = document.getElementById("live-preview");
          if (title && title.dataset.auto === "1" && preview && preview.dataset.title) {
            title.value = preview.dataset.title;
          }
        })
        .catch(function () {
          // Offline or refused: the Preview button still works.
        });
    }, 350);
  }
  form.addEventListener("change", refresh);
  form.addEventListener("input", function (event) {
    if (event.target !== title) refresh();
  });
})();
