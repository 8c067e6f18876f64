// ProjectView front end: renders the `summary` tables built in Python (deg_widgets/project_view.py).
// Plain ESM, no dependencies. Clicking (or Enter on) a video row sets `selected`.

/**
 * @typedef {{key: string, frames: number|null, fps: number|null, width: number|null,
 *   height: number|null, split: string|null, labels_file: boolean, labeled: number,
 *   labeled_fraction: Record<string, number>, features: string[], sequence: string[],
 *   other_outputs: string[], outputs_error: string|null, predictions: boolean,
 *   error: string|null}} Video
 * @typedef {{name: string, positive_frames: number, bouts: number, labeled_frames: number}} Total
 * @typedef {{name: string, stage: string|null, arch: string|null, stale: boolean,
 *   epochs: number, best_epoch: number|null, best_val_loss: number|null,
 *   macro_f1: number|null, f1: Record<string, number|null>, error: string|null}} Run
 * @typedef {{project: string, root: string, behaviors: string[], splits: Record<string, number>,
 *   videos: Video[], behavior_totals: Total[], runs: Run[], warnings: string[],
 *   updated: string}} Summary
 * @typedef {{get: (name: string) => any, set: (name: string, value: any) => void,
 *   save_changes: () => void, send: (content: any) => void,
 *   on: (event: string, cb: () => void) => void,
 *   off: (event: string, cb: () => void) => void}} Model
 */

/**
 * @param {string} tag
 * @param {Record<string, any>} [props]
 * @param {(Node|string|null|undefined)[]} [children]
 * @returns {HTMLElement}
 */
function h(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) node.setAttribute(k, String(v));
  }
  for (const c of children) {
    if (c !== null && c !== undefined) node.append(c);
  }
  return node;
}

/** @param {number|null|undefined} x @param {number} [digits] */
function num(x, digits = 3) {
  return x === null || x === undefined ? "–" : x.toFixed(digits);
}

/** @param {number|null|undefined} x */
function pct(x) {
  return x === null || x === undefined ? "–" : `${Math.round(x * 100)}%`;
}

/**
 * A horizontal bar with its figure printed next to it.
 * @param {number} fraction 0..1 of the bar's width
 * @param {string} label the figure shown
 * @param {string} [title] tooltip
 */
function bar(fraction, label, title) {
  const f = Math.max(0, Math.min(1, Number.isFinite(fraction) ? fraction : 0));
  return h("span", { class: "deg-pv-barcell", title }, [
    h("span", { class: "deg-pv-bar" }, [
      h("span", { class: "deg-pv-fill", style: `width: ${(f * 100).toFixed(1)}%` }),
    ]),
    h("span", { class: "deg-pv-figure", text: label }),
  ]);
}

/** @param {string[]} names @param {string} cls */
function tags(names, cls) {
  if (!names.length) return h("span", { class: "deg-pv-none", text: "–" });
  return h(
    "span",
    {},
    names.map((n) => h("span", { class: `deg-pv-tag ${cls}`, title: n, text: shortRun(n) })),
  );
}

/** "240101_120000_sequence_tgmj" -> "240101_120000" (the stage has its own column). */
function shortRun(/** @type {string} */ name) {
  const m = /^(\d{6}_\d{6})_/.exec(name);
  return m ? m[1] : name;
}

/**
 * @param {string[]} head
 * @param {HTMLElement[]} rows
 * @param {string} cls
 */
function table(head, rows, cls) {
  return h("table", { class: `deg-pv-table ${cls}` }, [
    h("thead", {}, [h("tr", {}, head.map((t) => h("th", { text: t })))]),
    h("tbody", {}, rows),
  ]);
}

/** @param {Video} v @param {string[]} behaviors */
function labeledTitle(v, behaviors) {
  if (!v.labels_file) return "no label file yet";
  return behaviors.map((b) => `${b}: ${pct(v.labeled_fraction[b] ?? 0)}`).join("\n");
}

/** @param {Model} model @param {Summary} s @param {string} selected */
function videosTable(model, s, selected) {
  const select = (/** @type {string} */ key) => {
    model.set("selected", key);
    model.save_changes();
  };
  const rows = s.videos.map((v) => {
    const size = v.width && v.height ? `${v.width}×${v.height}` : "–";
    const outputs = v.outputs_error
      ? h("span", { class: "deg-pv-bad", text: v.outputs_error })
      : null;
    return h(
      "tr",
      {
        class: `deg-pv-video${v.key === selected ? " deg-pv-selected" : ""}`,
        "data-key": v.key,
        tabindex: 0,
        title: v.error ?? `select ${v.key}`,
        onclick: () => select(v.key),
        onkeydown: (/** @type {KeyboardEvent} */ e) => {
          if (e.key === "Enter" || e.key === " ") {
            e.preventDefault();
            select(v.key);
          }
        },
      },
      [
        h("td", { class: "deg-pv-key" }, [
          v.key,
          v.error ? h("span", { class: "deg-pv-bad", text: " ⚠" }) : null,
        ]),
        h("td", { class: "deg-pv-num", text: v.frames ?? "–" }),
        h("td", { class: "deg-pv-num", text: v.fps === null ? "–" : v.fps.toFixed(2) }),
        h("td", { class: "deg-pv-num", text: size }),
        h("td", { class: `deg-pv-split deg-pv-split-${v.split ?? "none"}`, text: v.split ?? "–" }),
        h("td", { class: "deg-pv-labeled" }, [
          bar(v.labeled, pct(v.labeled), labeledTitle(v, s.behaviors)),
        ]),
        h("td", {}, [outputs ?? tags(v.features, "deg-pv-tag-features")]),
        h("td", {}, [outputs ? null : tags(v.sequence, "deg-pv-tag-sequence")]),
        h("td", { class: "deg-pv-center", text: v.predictions ? "✓" : "–" }),
      ],
    );
  });
  if (!rows.length) {
    rows.push(h("tr", {}, [h("td", { colspan: 9, class: "deg-pv-none", text: "no videos yet" })]));
  }
  return table(
    ["video", "frames", "fps", "size", "split", "labelled", "features", "sequence", "predictions"],
    rows,
    "deg-pv-videos",
  );
}

/** @param {Summary} s */
function behaviorsTable(s) {
  const maxPos = Math.max(1, ...s.behavior_totals.map((t) => t.positive_frames));
  const maxBouts = Math.max(1, ...s.behavior_totals.map((t) => t.bouts));
  const rows = s.behavior_totals.map((t) =>
    h("tr", { class: "deg-pv-behavior", "data-behavior": t.name }, [
      h("td", { text: t.name }),
      h("td", {}, [bar(t.positive_frames / maxPos, String(t.positive_frames))]),
      h("td", {}, [bar(t.bouts / maxBouts, String(t.bouts))]),
      h("td", { class: "deg-pv-num", text: t.labeled_frames }),
    ]),
  );
  return table(["behaviour", "positive frames", "bouts", "labelled frames"], rows, "deg-pv-totals");
}

/** @param {Summary} s */
function runsTable(s) {
  const rows = s.runs.map((r) => {
    const f1 = Object.entries(r.f1);
    return h("tr", { class: `deg-pv-run${r.stale ? " deg-pv-stale" : ""}`, "data-run": r.name }, [
      h("td", { class: "deg-pv-key", title: r.name, text: r.name }),
      h("td", { text: r.stage ?? "?" }),
      h("td", { text: r.arch ?? "?" }),
      h("td", { class: "deg-pv-num", text: r.epochs }),
      h("td", { class: "deg-pv-num", text: num(r.best_val_loss, 4) }),
      h("td", {}, [r.macro_f1 === null ? "–" : bar(r.macro_f1, num(r.macro_f1, 2))]),
      h(
        "td",
        { class: "deg-pv-f1s" },
        f1.length
          ? f1.map(([b, v]) =>
              h("span", { class: "deg-pv-f1", title: `${b}: F1 ${num(v, 3)}` }, [
                h("span", { class: "deg-pv-f1name", text: b }),
                bar(v ?? 0, num(v, 2)),
              ]),
            )
          : ["–"],
      ),
      h("td", {}, [
        r.stale
          ? h("span", {
              class: "deg-pv-badge deg-pv-bad",
              title: "trained for other behaviours: retrain this stage",
              text: "stale",
            })
          : null,
        r.error ? h("span", { class: "deg-pv-bad", title: r.error, text: " ⚠" }) : null,
      ]),
    ]);
  });
  if (!rows.length) {
    rows.push(h("tr", {}, [h("td", { colspan: 8, class: "deg-pv-none", text: "no runs yet" })]));
  }
  return table(
    ["run", "stage", "arch", "epochs", "best val loss", "macro F1", "F1 per behaviour", ""],
    rows,
    "deg-pv-runs",
  );
}

/** @param {{model: Model, el: HTMLElement}} ctx */
function render({ model, el }) {
  el.classList.add("deg-pv");
  const draw = () => {
    /** @type {Summary} */
    const s = model.get("summary");
    const error = model.get("error");
    const selected = model.get("selected");
    el.replaceChildren();
    if (error) el.append(h("div", { class: "deg-pv-error", role: "alert", text: error }));
    if (!s || !s.videos) {
      el.append(h("div", { class: "deg-pv-none", text: "loading…" }));
      return;
    }
    const sp = s.splits ?? {};
    el.append(
      h("div", { class: "deg-pv-header" }, [
        h("span", { class: "deg-pv-title", text: s.project }),
        h("span", { class: "deg-pv-root", title: s.root, text: s.root }),
        h("span", {
          class: "deg-pv-counts",
          text:
            `${s.videos.length} videos (train ${sp.train ?? 0}, val ${sp.val ?? 0}, ` +
            `test ${sp.test ?? 0}) · behaviours: ${s.behaviors.join(", ")}`,
        }),
        h("span", { class: "deg-pv-spacer" }),
        h("span", { class: "deg-pv-updated", text: `updated ${s.updated}` }),
        h("button", {
          class: "deg-pv-refresh",
          title: "re-read the project from disk",
          text: "↻ refresh",
          onclick: () => model.send({ type: "refresh" }),
        }),
      ]),
    );
    if (s.warnings.length) {
      el.append(
        h(
          "ul",
          { class: "deg-pv-warnings" },
          s.warnings.map((w) => h("li", { text: w })),
        ),
      );
    }
    el.append(
      h("h4", { text: "Videos" }),
      videosTable(model, s, selected),
      h("h4", { text: "Behaviours" }),
      behaviorsTable(s),
      h("h4", { text: "Model runs" }),
      runsTable(s),
    );
  };
  // a new selection only moves the highlight, so keyboard focus stays on the row
  const mark = () => {
    const key = model.get("selected");
    for (const row of el.querySelectorAll("tr.deg-pv-video")) {
      row.classList.toggle("deg-pv-selected", row.getAttribute("data-key") === key);
    }
  };
  draw();
  model.on("change:summary", draw);
  model.on("change:error", draw);
  model.on("change:selected", mark);
  return () => {
    model.off("change:summary", draw);
    model.off("change:error", draw);
    model.off("change:selected", mark);
  };
}

export default { render };
