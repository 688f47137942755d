// "Use" on a suggested treatment fills the first empty course row with its usual course.
document.querySelectorAll(".use-treatment").forEach(function (button) {
  button.addEventListener("click", function () {
    var rows = document.querySelectorAll("#courses .course-row");
    for (var i = 0; i < rows.length; i++) {
      var select = rows[i].querySelector("select[name$='-treatment']");
      if (select && !select.value) {
        select.value = button.dataset.treatment;
        rows[i].querySelector("input[name$='-sessions_count']").value = button.dataset.sessions;
        rows[i].querySelector("input[name$='-interval_days']").value = button.dataset.interval;
        rows[i].querySelector("input[name$='-offset_days']").value = 0;
        select.focus();
        return;
      }
    }
    alert("All course rows are used: save or preview to get more rows.");
  });
});
