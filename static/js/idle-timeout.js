// Warn before the idle logout (clinic.middleware.IdleTimeoutMiddleware).
// <body data-idle-timeout="seconds" data-session-status-url="..."> turns it on. The server
// keeps the clock (other tabs count too): this script only asks how long is left, shows a
// notice two minutes before, and when the time is up reloads, which shows the login page.
(function () {
  "use strict";
  var body = document.body;
  var timeout = parseInt(body.dataset.idleTimeout || "", 10);
  var statusUrl = body.dataset.sessionStatusUrl;
  if (!timeout || !statusUrl) {
    return;
  }
  var WARN_SECONDS = 120;
  var checkTimer = null;
  var tickTimer = null;
  var notice = null;

  function schedule(seconds) {
    clearTimeout(checkTimer);
    checkTimer = setTimeout(check, Math.max(seconds, 1) * 1000);
  }

  function minutesAndSeconds(seconds) {
    var m = Math.floor(seconds / 60);
    var s = seconds % 60;
    return m + ":" + (s < 10 ? "0" : "") + s;
  }

  function hideNotice() {
    clearInterval(tickTimer);
    if (notice) {
      notice.remove();
      notice = null;
    }
  }

  function showNotice(secondsLeft) {
    if (!notice) {
      notice = document.createElement("div");
      notice.className =
        "alert alert-warning shadow position-fixed top-0 start-50 translate-middle-x mt-2 " +
        "d-flex align-items-center gap-3 z-3";
      notice.setAttribute("role", "alert");
      notice.id = "idle-warning";
      var text = document.createElement("span");
      var button = document.createElement("button");
      button.type = "button";
      button.className = "btn btn-sm btn-primary";
      button.textContent = "Stay logged in";
      button.addEventListener("click", function () {
        ask(statusUrl + "?stay=1");
      });
      notice.appendChild(text);
      notice.appendChild(button);
      document.body.appendChild(notice);
    }
    var end = Date.now() + secondsLeft * 1000;
    var label = notice.querySelector("span");
    function tick() {
      var left = Math.max(Math.round((end - Date.now()) / 1000), 0);
      label.textContent =
        "You will be logged out in " + minutesAndSeconds(left) + " without activity.";
    }
    tick();
    clearInterval(tickTimer);
    tickTimer = setInterval(tick, 1000);
  }

  function check() {
    ask(statusUrl);
  }

  function loggedOut() {
    hideNotice();
    window.location.assign(window.location.href);
  }

  function handle(secondsLeft) {
    if (secondsLeft <= 0) {
      loggedOut();
    } else if (secondsLeft <= WARN_SECONDS) {
      showNotice(secondsLeft);
      schedule(secondsLeft);
    } else {
      hideNotice();
      schedule(secondsLeft - WARN_SECONDS);
    }
  }

  function ask(url) {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        var type = response.headers.get("Content-Type") || "";
        if (!response.ok || type.indexOf("application/json") === -1) {
          throw new Error("logged out");
        }
        return response.json();
      })
      .then(function (data) {
        handle(data.seconds_left);
      })
      .catch(function (error) {
        if (error.message === "logged out") {
          loggedOut();
        } else {
          schedule(30); // the network, not the login: ask again shortly
        }
      });
  }

  schedule(timeout - WARN_SECONDS);
})();
