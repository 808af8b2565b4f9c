// Dataset upload with a real progress bar: the form posts to the API with
// XMLHttpRequest (upload.onprogress), then opens the new version's page, where
// progress.js follows the validation. Without JavaScript the form posts to the
// browser view instead.
//
// Before uploading, the preview (POST …/preview/, which stores nothing) shows
// the first rows as they will be read and the type of each column; changing a
// read option or a column's type reads the file again. The choices travel in
// the form's fields (column types as JSON in a hidden input), so the upload
// stores exactly what was previewed.
(function () {
  "use strict";
  const TYPES = ["integer", "float", "boolean", "categorical", "text", "datetime"];
  const OPTIONS = ["delimiter", "decimal", "thousands", "encoding", "header_row", "sheet", "column_types"];

  function csrfToken(form) {
    const meta = document.querySelector('meta[name="csrf-token"]');
    if (meta && meta.content) return meta.content;
    const input = form.querySelector("[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function shown(value) {
    if (value === "\t") return "tab";
    if (value === " ") return "space";
    return value === "" ? "none" : value;
  }

  function initPreview(form) {
    const url = form.dataset.previewUrl;
    const button = document.getElementById("preview-button");
    const box = document.getElementById("upload-preview");
    if (!url || !button || !box || !window.fetch) return;
    const fileInput = form.querySelector("[name=file]");
    const typesInput = form.querySelector("[name=column_types]");
    const table = document.getElementById("preview-table");
    const summary = box.querySelector("[data-preview-summary]");
    const error = document.getElementById("upload-error");
    let overrides = {};
    try { overrides = JSON.parse(typesInput.value || "{}"); } catch (e) { overrides = {}; }
    button.hidden = false;

    function render(body) {
      const o = body.read_options || {};
      const parts = [];
      if (o.delimiter !== undefined) parts.push("delimiter " + shown(o.delimiter));
      parts.push("decimal mark " + o.decimal, "thousands separator " + shown(o.thousands || ""));
      if (o.encoding) parts.push("encoding " + o.encoding);
      parts.push("header on line " + o.header_row);
      if (o.sheet) parts.push("sheet " + o.sheet);
      summary.textContent = "Read as: " + parts.join(", ") + ". First " + body.rows.length + " rows:";
      const head = table.tHead;
      const bodyEl = table.tBodies[0];
      head.textContent = "";
      bodyEl.textContent = "";
      const names = document.createElement("tr");
      const kinds = document.createElement("tr");
      body.columns.forEach(function (column) {
        const th = document.createElement("th");
        th.textContent = column.name;
        names.appendChild(th);
        const cell = document.createElement("th");
        const select = document.createElement("select");
        select.dataset.column = column.name;
        select.setAttribute("aria-label", "Type of " + column.name);
        TYPES.forEach(function (kind) {
          const option = document.createElement("option");
          option.value = kind;
          option.textContent = kind;
          if (kind === column.type) option.selected = true;
          select.appendChild(option);
        });
        select.addEventListener("change", function () {
          overrides[column.name] = select.value;
          typesInput.value = JSON.stringify(overrides);
          preview();
        });
        cell.appendChild(select);
        kinds.appendChild(cell);
      });
      head.appendChild(names);
      head.appendChild(kinds);
      body.rows.forEach(function (row) {
        const tr = document.createElement("tr");
        body.columns.forEach(function (column) {
          const td = document.createElement("td");
          const value = row[column.name];
          td.textContent = value === null || value === undefined ? "—" : String(value);
          tr.appendChild(td);
        });
        bodyEl.appendChild(tr);
      });
      box.hidden = false;
    }

    function preview() {
      if (!fileInput.files || !fileInput.files.length) return;
      const data = new FormData();
      data.append("file", fileInput.files[0]);
      OPTIONS.forEach(function (name) {
        const field = form.elements[name];
        if (field && field.value) data.append(name, field.value);
      });
      error.hidden = true;
      summary.textContent = "Reading the file…";
      box.hidden = false;
      fetch(url, {method: "POST", body: data, credentials: "same-origin",
                  headers: {"X-CSRFToken": csrfToken(form), "Accept": "application/json"}})
        .then(function (response) {
          return response.json().catch(function () { return {}; }).then(function (body) {
            if (!response.ok) throw new Error((body.error && body.error.message) || ("HTTP " + response.status));
            render(body);
          });
        })
        .catch(function (exc) {
          box.hidden = true;
          error.hidden = false;
          error.textContent = "Preview failed: " + exc.message;
        });
    }

    button.addEventListener("click", preview);
    fileInput.addEventListener("change", function () {
      overrides = {};
      typesInput.value = "";
      preview();
    });
    OPTIONS.forEach(function (name) {
      const field = form.elements[name];
      if (field && name !== "column_types") field.addEventListener("change", preview);
    });
  }

  function init() {
    const form = document.getElementById("upload-form");
    if (!form || !window.XMLHttpRequest || !window.FormData) return;
    initPreview(form);
    const box = document.getElementById("upload-progress");
    const bar = box.querySelector(".progress > div");
    const text = box.querySelector("[data-upload-text]");
    const error = document.getElementById("upload-error");
    const button = document.getElementById("upload-button");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      const data = new FormData(form);
      if (!data.get("parent")) data.delete("parent");
      OPTIONS.forEach(function (name) { if (!data.get(name)) data.delete(name); });
      const xhr = new XMLHttpRequest();
      xhr.open("POST", form.dataset.apiUrl);
      xhr.setRequestHeader("X-CSRFToken", csrfToken(form));
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.addEventListener("progress", function (e) {
        if (!e.lengthComputable) return;
        const pct = Math.round((100 * e.loaded) / e.total);
        bar.style.width = pct + "%";
        text.textContent = "Uploading… " + pct + "% of " + Math.round(e.total / 1024) + " KiB";
      });
      xhr.addEventListener("load", function () {
        let body = {};
        try { body = JSON.parse(xhr.responseText); } catch (e) { body = {}; }
        if (xhr.status === 200 || xhr.status === 201) {
          bar.style.width = "100%";
          text.textContent = body.created === false
            ? "The same content already is v" + body.version + "; opening it…"
            : "Uploaded as v" + body.version + "; validating…";
          window.location.href = form.dataset.versionUrl.replace(/0\/$/, body.id + "/");
          return;
        }
        box.hidden = true;
        button.disabled = false;
        error.hidden = false;
        error.textContent = (body.error && body.error.message) || ("Upload failed (HTTP " + xhr.status + ").");
      });
      xhr.addEventListener("error", function () {
        box.hidden = true;
        button.disabled = false;
        error.hidden = false;
        error.textContent = "The upload was interrupted; check the connection and try again.";
      });
      error.hidden = true;
      box.hidden = false;
      button.disabled = true;
      bar.style.width = "0%";
      xhr.send(data);
    });
  }
  document.addEventListener("DOMContentLoaded", init);
})();
