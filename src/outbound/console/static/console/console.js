/* Outbound console: small progressive enhancements. Every page works without this file. */
(function () {
  "use strict";

  /* Sections shown only for one value of a control: data-show-if="name=value". */
  function toggleSections(root) {
    root.querySelectorAll("[data-show-if]").forEach(function (section) {
      var rule = section.getAttribute("data-show-if").split("=");
      var form = section.closest("form");
      if (!form) return;
      var control = form.elements.namedItem(rule[0]);
      if (!control) return;
      var shown = control.value === rule[1];
      section.hidden = !shown;
    });
  }

  function setFieldError(form, name, messages) {
    var slot = form.querySelector('[data-error-for="' + name + '"]');
    var text = (messages || []).join(" ");
    if (!slot) return false;
    slot.textContent = text;
    var field = slot.closest(".field");
    if (field) field.classList.toggle("has-error", !!text);
    var input = form.elements.namedItem(name);
    if (input && input.setAttribute) {
      if (text) {
        input.setAttribute("aria-invalid", "true");
        var ids = (input.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
        if (ids.indexOf(slot.id) < 0) ids.push(slot.id);
        input.setAttribute("aria-describedby", ids.join(" "));
      } else {
        input.removeAttribute("aria-invalid");
      }
    }
    return true;
  }

  function clearErrors(form) {
    form.querySelectorAll("[data-error-for]").forEach(function (slot) {
      setFieldError(form, slot.getAttribute("data-error-for"), []);
    });
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function renderStep(step) {
    var li = el("li", "step " + (step.ok ? "ok" : "fail"));
    var mark = el("span", "mark", step.ok ? "✓" : "✗");
    mark.setAttribute("aria-hidden", "true");
    li.appendChild(mark);
    li.appendChild(el("strong", "name", step.label || step.name));
    li.appendChild(el("span", "sr-only", step.ok ? " passed" : " failed"));
    li.appendChild(el("span", "time", step.duration_ms + " ms"));
    if (step.detail) li.appendChild(el("div", "detail", step.detail));
    if (step.reply) {
      var reply = el("div", "reply");
      reply.appendChild(el("span", null, "Server: "));
      reply.appendChild(el("code", null, step.reply));
      li.appendChild(reply);
    }
    if (step.tls_version) {
      var tls = step.tls_version + (step.cipher ? " · " + step.cipher : "");
      if (step.certificate) {
        tls += " · certificate " + step.certificate.subject +
          ", expires " + (step.certificate.not_after || "?");
      }
      li.appendChild(el("div", "tls", tls));
    }
    return li;
  }

  /* The SMTP test: stream the steps (one JSON object a line) as the server reports them. */
  async function liveTest(button) {
    var form = button.form;
    var report = document.getElementById("test-report");
    clearErrors(form);
    report.textContent = "";
    var status = el("p", "result running", "Testing…");
    report.appendChild(status);
    var list = el("ol", "steps");
    report.appendChild(list);
    button.disabled = true;
    try {
      var response = await fetch(button.formAction, {
        method: "POST",
        body: new FormData(form),
        headers: { "Accept": "application/x-ndjson" },
        credentials: "same-origin"
      });
      if (response.status === 400 || response.status === 429) {
        var body = await response.json();
        var rest = [];
        Object.keys(body.errors || {}).forEach(function (name) {
          if (!setFieldError(form, name, body.errors[name])) rest = rest.concat(body.errors[name]);
        });
        status.className = "result fail";
        var first = form.querySelector("[aria-invalid=true]");
        status.textContent = "✗ " + (first ? "Fix the highlighted fields first. " : "") + rest.join(" ");
        if (first) first.focus();
        return;
      }
      if (!response.ok || !response.body) {
        status.className = "result fail";
        status.textContent = "✗ The test could not be run (HTTP " + response.status + ").";
        return;
      }
      var reader = response.body.getReader();
      var decoder = new TextDecoder();
      var buffer = "";
      for (;;) {
        var chunk = await reader.read();
        if (chunk.done) break;
        buffer += decoder.decode(chunk.value, { stream: true });
        var lines = buffer.split("\n");
        buffer = lines.pop();
        lines.forEach(function (line) {
          if (!line.trim()) return;
          var item = JSON.parse(line);
          if (item.step) list.appendChild(renderStep(item.step));
          if (item.result) {
            status.className = "result " + (item.result.ok ? "ok" : "fail");
            status.textContent = (item.result.ok ? "✓ " : "✗ ") + item.result.message;
            status.setAttribute("data-result", item.result.ok ? "ok" : "fail");
          }
        });
      }
    } catch (err) {
      status.className = "result fail";
      status.textContent = "✗ The test could not be run: " + err.message;
    } finally {
      button.disabled = false;
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    toggleSections(document);
    /* After a refused save, start where the first error is. */
    var invalid = document.querySelector("main [aria-invalid=true]");
    if (invalid) invalid.focus();
    document.addEventListener("change", function () { toggleSections(document); });
    /* Forms whose second submission would do harm (e.g. an API key nobody sees): one click. */
    document.querySelectorAll("form[data-submit-once]").forEach(function (form) {
      form.addEventListener("submit", function () {
        /* After this event, so the clicked button's own name and value are still sent. */
        setTimeout(function () {
          form.querySelectorAll("button[type=submit], button:not([type])").forEach(function (b) {
            b.disabled = true;
          });
        }, 0);
      });
    });
    document.querySelectorAll("button[data-live-test]").forEach(function (button) {
      button.addEventListener("click", function (event) {
        if (!window.fetch || !window.ReadableStream) return; /* the server renders the report */
        event.preventDefault();
        liveTest(button);
      });
    });
  });
})();
