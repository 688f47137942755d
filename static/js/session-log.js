// Highlight parameters that differ from last time as they are typed; add adverse-event rows.
(function () {
  document.querySelectorAll("#session-log .param").forEach(function (wrapper) {
    var input = wrapper.querySelector("input, select");
    if (!input || !wrapper.dataset.previous) { return; }
    var update = function () {
      wrapper.classList.toggle("param-changed", input.value !== wrapper.dataset.previous);
    };
    input.addEventListener("input", update);
    input.addEventListener("change", update);
  });
  var add = document.getElementById("add-ae");
  if (add) {
    add.addEventListener("click", function () {
      var total = document.getElementById("id_ae-TOTAL_FORMS");
      var index = parseInt(total.value, 10);
      var html = document.getElementById("ae-empty").innerHTML.replace(/__prefix__/g, index);
      document.getElementById("ae-forms").insertAdjacentHTML("beforeend", html);
      total.value = index + 1;
    });
  }
})();
