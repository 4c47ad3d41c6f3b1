// Dashboards: render the server-built Vega-Lite specs, sort and filter the at-risk table, and
// drive the what-if sliders. A static file (the CSP allows no inline script); the charts use
// vega-interpreter so that no expression is compiled with eval.
(function () {
  "use strict";

  var params = new URLSearchParams(window.location.search);
  var launchToken = params.get("lt");
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";
  var locale = document.documentElement.lang || "en";

  // ------------------------------------------------------------------ charts
  function renderCharts() {
    document.querySelectorAll("[data-vega-spec]").forEach(function (el) {
      var spec = JSON.parse(el.getAttribute("data-vega-spec"));
      if (typeof vegaEmbed === "undefined") { return; }
      vegaEmbed(el, spec, {
        actions: false,
        renderer: "svg",
        // Their <style> elements would break the CSP (style-src 'self'): arche.css has the rules.
        defaultStyle: false,
        tooltip: { disableDefaultStyle: true },
        ast: true,
        expr: vegaInterpreter.expressionInterpreter,
        formatLocale: locale === "fr" ? FR_NUMBERS : undefined,
        // Dates on the axes in the reader's words (no "10 PM" on a French page).
        timeFormatLocale: locale === "fr" ? FR_TIMES : undefined
      }).then(function (result) {
        el.setAttribute("data-rendered", "1");
        var svg = el.querySelector("svg");
        if (svg) { svg.setAttribute("aria-hidden", "true"); svg.setAttribute("focusable", "false"); }
        el.vegaView = result.view;
      }).catch(function (err) {
        el.setAttribute("data-rendered", "error");
        el.textContent = String(err);
      });
    });
  }
  var FR_NUMBERS = {
    decimal: ",", thousands: "\u202f", grouping: [3], currency: ["", "\u00a0€"], percent: "\u202f%"
  };
  var FR_TIMES = {
    dateTime: "%A %e %B %Y à %X", date: "%d/%m/%Y", time: "%H:%M:%S", periods: ["", ""],
    days: ["dimanche", "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi"],
    shortDays: ["dim.", "lun.", "mar.", "mer.", "jeu.", "ven.", "sam."],
    months: ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
             "septembre", "octobre", "novembre", "décembre"],
    shortMonths: ["janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.",
                  "oct.", "nov.", "déc."]
  };
  // Whether a count takes the singular in the page's language (French: 0 and 1).
  function singular(n) { return locale === "fr" ? n <= 1 : n === 1; }

  // ------------------------------------------------------------------ at-risk table
  // Sorting and filtering cover every row; then only one page of the matching rows shows
  // (`data-page-size`), with previous/next buttons and "Page 2 of 4" said to screen readers.
  function setupTable(table) {
    var tbody = table.tBodies[0];
    var pageSize = parseInt(table.getAttribute("data-page-size") || "0", 10) || 0;
    var page = 0;
    var pager = document.getElementById("risk-pages");
    var prev = document.getElementById("risk-prev");
    var next = document.getElementById("risk-next");
    var pageText = document.getElementById("risk-page");
    var buttons = table.querySelectorAll("button.sort");
    buttons.forEach(function (button) {
      button.addEventListener("click", function () {
        var th = button.closest("th");
        var col = Array.prototype.indexOf.call(th.parentNode.children, th);
        var numeric = button.getAttribute("data-type") === "num";
        var ascending = th.getAttribute("aria-sort") !== "ascending";
        table.querySelectorAll("th[aria-sort]").forEach(function (other) {
          other.removeAttribute("aria-sort");
        });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        var rows = Array.prototype.slice.call(tbody.rows);
        rows.sort(function (a, b) {
          var x = a.cells[col].getAttribute("data-value");
          var y = b.cells[col].getAttribute("data-value");
          var cmp;
          if (numeric) {
            // Missing values sort last either way.
            if (x === "" && y === "") { cmp = 0; }
            else if (x === "") { return 1; }
            else if (y === "") { return -1; }
            else { cmp = parseFloat(x) - parseFloat(y); }
          } else {
            cmp = x.localeCompare(y, locale);
          }
          return ascending ? cmp : -cmp;
        });
        rows.forEach(function (row) { tbody.appendChild(row); });
        page = 0;
        applyFilter();
      });
    });
    var filter = document.getElementById("risk-filter");
    var riskOnly = document.getElementById("risk-only");
    var count = document.getElementById("risk-count");
    var groupFilter = document.getElementById("group-filter");
    var notContacted = document.getElementById("not-contacted");
    var people = applyActions(tbody);
    function inGroup(row) {
      if (!groupFilter || !groupFilter.value) { return true; }
      var p = people[row.getAttribute("data-person")];
      return !!p && p.groups.indexOf(parseInt(groupFilter.value, 10)) !== -1;
    }
    function uncontacted(row) {
      if (!notContacted || !notContacted.checked) { return true; }
      var p = people[row.getAttribute("data-person")];
      return !p || !p.contacted;
    }
    function applyFilter() {
      var text = filter ? filter.value.trim().toLowerCase() : "";
      var matching = [];
      Array.prototype.forEach.call(tbody.rows, function (row) {
        var visible = row.getAttribute("data-name").indexOf(text) !== -1 &&
          (!riskOnly || !riskOnly.checked || row.getAttribute("data-risk") === "1") &&
          inGroup(row) && uncontacted(row);
        row.hidden = true;
        if (visible) { matching.push(row); }
      });
      var pages = pageSize ? Math.max(1, Math.ceil(matching.length / pageSize)) : 1;
      page = Math.min(page, pages - 1);
      var first = pageSize ? page * pageSize : 0;
      var last = pageSize ? first + pageSize : matching.length;
      matching.forEach(function (row, i) { row.hidden = i < first || i >= last; });
      if (count) {
        var template = singular(matching.length) ? "data-template" : "data-template-other";
        count.textContent = (count.getAttribute(template) || count.getAttribute("data-template"))
          .replace("{shown}", matching.length).replace("{total}", tbody.rows.length);
      }
      if (pager) {
        pager.hidden = pages <= 1;
        prev.disabled = page === 0;
        next.disabled = page >= pages - 1;
        pageText.textContent = pageText.getAttribute("data-template")
          .replace("{page}", page + 1).replace("{pages}", pages);
      }
    }
    function goTo(delta) {
      page = Math.max(0, page + delta);
      applyFilter();
    }
    if (filter) { filter.addEventListener("input", function () { page = 0; applyFilter(); }); }
    [riskOnly, groupFilter, notContacted].forEach(function (control) {
      if (control) { control.addEventListener("change", function () { page = 0; applyFilter(); }); }
    });
    setupSelection(tbody, function () { return matchingRows(); });
    function matchingRows() {
      // Every row the filters keep, on every page (not only the page shown).
      var text = filter ? filter.value.trim().toLowerCase() : "";
      return Array.prototype.filter.call(tbody.rows, function (row) {
        return row.getAttribute("data-name").indexOf(text) !== -1 &&
          (!riskOnly || !riskOnly.checked || row.getAttribute("data-risk") === "1") &&
          inGroup(row) && uncontacted(row);
      });
    }
    if (prev) { prev.addEventListener("click", function () { goTo(-1); }); }
    if (next) { next.addEventListener("click", function () { goTo(1); }); }
    applyFilter();
  }

  // ------------------------------------------------------------------ teacher actions
  // Per teacher and per request (the table itself is cached for the course): who became at
  // risk since the last visit, each student's follow-up status and last contact.
  function applyActions(tbody) {
    var data = document.getElementById("actions-data");
    if (!data) { return {}; }
    var people = JSON.parse(data.getAttribute("data-people") || "{}");
    Array.prototype.forEach.call(tbody.rows, function (row) {
      var cell = row.querySelector("td.follow-up");
      var student = row.querySelector("a.student-link");
      if (cell && student) {
        var link = document.createElement("a");
        link.className = "follow-up-link";
        link.href = student.getAttribute("href").replace(/\/learners\/(\d+)/, "/learners/$1/follow-up");
        link.textContent = data.getAttribute("data-follow-up");
        cell.appendChild(link);
      }
      var p = people[row.getAttribute("data-person")];
      if (!p) { return; }
      var nameCell = row.cells[1];
      if (p["new"]) {
        row.classList.add("newly-at-risk");
        var badge = document.createElement("span");
        badge.className = "badge text-bg-warning ms-1 new-badge";
        badge.textContent = data.getAttribute("data-new");
        nameCell.appendChild(badge);
      }
      var state = row.querySelector(".follow-up-state");
      if (state) {
        var words = [];
        if (p.status_text) { words.push(p.status_text); }
        if (p.contacted) { words.push(data.getAttribute("data-contacted").replace("{date}", p.contacted)); }
        state.textContent = words.join(" · ");
        if (p.status) { row.setAttribute("data-status", p.status); }
        if (p.contacted) { row.setAttribute("data-contacted", "1"); }
      }
    });
    return people;
  }

  function setupSelection(tbody, matching) {
    var count = document.getElementById("selected-count");
    var submit = document.getElementById("contact-selected");
    function boxes(rows) {
      return rows.map(function (row) { return row.querySelector("input.pick"); })
        .filter(function (box) { return !!box; });
    }
    function update() {
      var n = tbody.querySelectorAll("input.pick:checked").length;
      if (count) {
        var template = singular(n) ? "data-template" : "data-template-other";
        count.textContent = (count.getAttribute(template) || "").replace("{n}", n);
      }
      if (submit) { submit.disabled = n === 0; }
    }
    function select(rows) {
      boxes(Array.prototype.slice.call(tbody.rows)).forEach(function (box) { box.checked = false; });
      boxes(rows).forEach(function (box) { box.checked = true; });
      update();
    }
    var atRisk = document.getElementById("select-at-risk");
    var shown = document.getElementById("select-shown");
    var none = document.getElementById("select-none");
    if (atRisk) {
      atRisk.addEventListener("click", function () {
        select(Array.prototype.filter.call(tbody.rows, function (row) {
          return row.getAttribute("data-risk") === "1";
        }));
      });
    }
    if (shown) { shown.addEventListener("click", function () { select(matching()); }); }
    if (none) { none.addEventListener("click", function () { select([]); }); }
    tbody.addEventListener("change", function (event) {
      if (event.target.classList.contains("pick")) { update(); }
    });
    update();
  }

  // ------------------------------------------------------------------ what-if
  function pct(value) {
    return new Intl.NumberFormat(locale, { style: "percent", maximumFractionDigits: 0 })
      .format(value);
  }
  function num(value, digits) {
    return new Intl.NumberFormat(locale, {
      minimumFractionDigits: digits, maximumFractionDigits: digits
    }).format(value);
  }

  function setupWhatIf(form) {
    var timer = null;
    var seq = 0;
    var error = document.getElementById("wi-error");
    var inputs = form.querySelectorAll("input[type=range]");

    function send() {
      var changes = {};
      inputs.forEach(function (input) {
        if (input.value !== input.getAttribute("data-initial")) {
          changes[input.getAttribute("data-feature")] = parseFloat(input.value);
        }
      });
      var mine = ++seq;
      var headers = { "Content-Type": "application/json", "X-CSRF-Token": csrf,
                      "Accept": "application/json" };
      if (launchToken) { headers["X-Launch-Token"] = launchToken; }
      form.setAttribute("aria-busy", "true");
      fetch(form.getAttribute("data-url"), {
        method: "POST", headers: headers, credentials: "same-origin",
        body: JSON.stringify({ changes: changes })
      }).then(function (response) {
        return response.json().then(function (body) { return { ok: response.ok, body: body }; });
      }).then(function (answer) {
        if (mine !== seq) { return; }
        form.removeAttribute("aria-busy");
        if (!answer.ok) { throw new Error(answer.body.message || answer.body.error); }
        var r = answer.body;
        error.hidden = true;
        var p = document.getElementById("wi-probability");
        // The server words the chance and its range ("under 5 %", "between 40 % and 70 %").
        p.textContent = r.shown ? r.shown.probability : pct(r.probability);
        p.setAttribute("data-value", r.probability);
        document.getElementById("wi-ci").textContent =
          r.shown ? r.shown.range : pct(r.ci_95[0]) + " – " + pct(r.ci_95[1]);
        var g = document.getElementById("wi-grade");
        // The server keeps the grade on its side of the pass mark ("9.9", not "10.0").
        g.textContent = r.shown ? r.shown.grade : num(r.predicted_grade, 1);
        g.setAttribute("data-value", r.predicted_grade);
        document.getElementById("wi-interval").textContent = r.shown ? r.shown.interval :
          num(r.grade_interval[0], 1) + " – " + num(r.grade_interval[1], 1);
      }).catch(function (err) {
        form.removeAttribute("aria-busy");
        error.hidden = false;
        error.textContent = form.getAttribute("data-error") + " " + err.message;
      });
    }

    inputs.forEach(function (input) {
      var out = document.getElementById(input.id + "-out");
      var digits = input.step === "1" ? 0 : 2;
      input.addEventListener("input", function () {
        if (out) { out.textContent = num(parseFloat(input.value), digits); }
        window.clearTimeout(timer);
        timer = window.setTimeout(send, 250);
      });
    });
    form.addEventListener("reset", function () {
      window.setTimeout(function () {
        inputs.forEach(function (input) {
          var out = document.getElementById(input.id + "-out");
          if (out) { out.textContent = num(parseFloat(input.value), input.step === "1" ? 0 : 2); }
        });
        send();
      }, 0);
    });
  }

  // ------------------------------------------------------------------ sync now
  // POST asks the scheduler for a sync; the GET of the same URL reports the run's page counts.
  function setupSync(slot) {
    var button = document.getElementById("sync-now");
    var bar = document.getElementById("sync-progress");
    var text = document.getElementById("sync-progress-text");
    var url = slot.getAttribute("data-sync-url");
    var headers = { "Accept": "application/json", "X-CSRF-Token": csrf };
    if (launchToken) { headers["X-Launch-Token"] = launchToken; }

    function show(state) {
      bar.hidden = false;
      if (state.state === "queued") {
        bar.removeAttribute("value");
        text.textContent = slot.getAttribute("data-msg-queued");
      } else if (state.state === "running") {
        if (state.fraction !== null && state.fraction !== undefined) {
          bar.value = state.fraction;
        } else {
          bar.removeAttribute("value");
        }
        text.textContent = slot.getAttribute("data-msg-running")
          .replace("{done}", state.pages_done).replace("{total}", state.pages_total || "?");
        if (state.steps > 1) {
          text.textContent = slot.getAttribute("data-msg-step")
            .replace("{step}", state.step).replace("{steps}", state.steps) + " " + text.textContent;
        }
      } else if (state.state === "done") {
        bar.value = 1;
        var done = singular(state.events_added) ? "data-msg-done" : "data-msg-done-other";
        text.textContent = (slot.getAttribute(done) || slot.getAttribute("data-msg-done"))
          .replace("{added}", state.events_added);
        window.setTimeout(function () { window.location.reload(); }, 1500);
        return true;
      } else if (state.state === "failed") {
        bar.hidden = true;
        text.textContent = slot.getAttribute("data-msg-failed") + " " + (state.error_message || "");
        button.disabled = false;
        return true;
      }
      return false;
    }

    function poll() {
      fetch(url, { headers: headers, credentials: "same-origin" })
        .then(function (response) { return response.json(); })
        .then(function (state) {
          if (!show(state)) { window.setTimeout(poll, 1500); }
        })
        .catch(function () { window.setTimeout(poll, 3000); });
    }

    if (slot.getAttribute("data-open") === "1") {
      // A sync or a backfill already asked for (linking past offerings asks for one): follow it.
      button.disabled = true;
      poll();
    }

    button.addEventListener("click", function () {
      button.disabled = true;
      fetch(url, { method: "POST", headers: headers, credentials: "same-origin" })
        .then(function (response) { return response.json(); })
        .then(function (state) { if (!show(state)) { window.setTimeout(poll, 1000); } })
        .catch(function () { button.disabled = false; });
    });
  }

  renderCharts();
  var syncSlot = document.getElementById("sync-slot");
  if (syncSlot && syncSlot.getAttribute("data-sync-url")) { setupSync(syncSlot); }
  var table = document.getElementById("risk-table");
  if (table) { setupTable(table); }
  var form = document.getElementById("what-if");
  if (form) { setupWhatIf(form); }
})();
