/**
 * Front end of `deg_widgets.Labeler` (anywidget ESM; plain JS, no bundler, no network imports).
 *
 * Python owns the labels: this file draws them and sends edit requests (`set`, `toggle`, ...).
 * Frames arrive on request as JPEG buffers (`{type: "frames", req, indices}` + one buffer per
 * index) and are kept as ImageBitmaps in an LRU cache. Label, probability and prediction arrays
 * arrive as Bytes traits: (n_frames, K) int8/uint8 in C order, read through typed-array views.
 *
 * Layout: toolbar / frame view (canvas) / scrub bar / ethogram timeline (canvas) / status bar.
 */

/**
 * The part of the anywidget model this file uses.
 * @typedef {{
 *   get(name: string): any,
 *   set(name: string, value: any): void,
 *   save_changes(): void,
 *   on(event: string, cb: (...args: any[]) => void): void,
 *   off(event?: string, cb?: (...args: any[]) => void): void,
 *   send(content: any, callbacks?: any, buffers?: ArrayBuffer[]): void,
 * }} Model
 */

/** @typedef {{behavior: number, value: number, anchor: number, group: string, sent: string}} Recording */
/** @typedef {{behavior: number, start: number, stop: number, value: number, t: number}} LocalEdit */
/**
 * A keypress-to-paint sample being measured (debug_timing); replyAt / decodedAt: when the
 * frame's JPEG arrived / was decoded, if it was not cached at the input.
 * @typedef {{kind: string, frame: number, t0: number, cached: boolean,
 *   replyAt?: number, decodedAt?: number}} PendingTiming
 */

const CACHE_SIZE = 300; // ImageBitmaps kept (LRU)
const AHEAD = 30; // frames requested ahead of the playhead ...
const BEHIND = 10; // ... and behind it
const MAX_PREFETCH = 2; // prefetch requests in flight at once (the exact frame always goes)
const CHUNK = 10; // frames per prefetch request
const REQ_TIMEOUT_MS = 5000; // a request without a full reply by then is forgotten
const PLAY_SYNC_MS = 100; // `frame` goes to Python at most ~10x/s while playing
const LOCAL_EDIT_MS = 1500; // optimistic edits re-applied over Python's labels until echoed
const SPEEDS = [0.1, 0.25, 0.5, 1, 2, 4, 8];
const PALETTE = [
  "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
  "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f",
];
const ABSENT = "#e2e2e2";
const PLAYHEAD = "#e0102a";

// Timeline geometry (CSS px).
const RULER_H = 20;
const LABEL_H = 18;
const PROB_H = 10;
const PRED_H = 10;
const GAP = 6;
const GUTTER = 124;
const RIGHT_PAD = 8;

/** Every shortcut, shown by "?" (keep in step with `onKeyDown`). */
const HELP = [
  [
    "1 … 9",
    "behaviour k at the playhead: toggle it and start recording; move to label a range; k again stops",
  ],
  ["Esc", "stop recording (and close this help)"],
  ["x / Delete / Backspace", "erase the playhead frame (all behaviours); while recording: erase the range"],
  ["← / →", "previous / next frame"],
  ["Shift+← / Shift+→", "10 frames back / forward"],
  ["Home / End", "first / last frame"],
  ["Space", "play / pause"],
  ["Ctrl/⌘+Z", "undo"],
  ["Ctrl/⌘+Shift+Z, Ctrl+Y", "redo"],
  ["Ctrl/⌘+S", "save now"],
  ["n / p", "next / previous bout (of the selected behaviour, else any)"],
  ["u / Shift+U", "next / previous uncertain frame (model)"],
  ["d / Shift+D", "next / previous disagreement of labels and predictions"],
  ["i", "import predictions onto unlabelled frames"],
  ["Shift+F", "finalize: unlabelled → absent for the whole video (asks first)"],
  ["+ / -", "zoom the timeline in / out"],
  ["?", "this help"],
  ["timeline click", "seek"],
  ["drag on a label row", "label the range present (Alt: absent; right button or e held: erase)"],
  ["Shift+click on a label row", "label from the playhead to the click"],
  ["Ctrl/⌘+click on a label row", "toggle that frame"],
  ["click a behaviour name", "select it for n / p"],
  ["wheel on the timeline", "zoom around the cursor; Shift+wheel or drag the ruler: pan"],
  ["wheel / drag / double-click on the frame", "zoom / pan / reset"],
];

/**
 * Copy of a Bytes trait as a typed array (the trait arrives as a DataView over a message buffer).
 * @template {Int8ArrayConstructor | Uint8ArrayConstructor} C
 * @param {any} v
 * @param {C} Ctor
 * @returns {InstanceType<C>}
 */
function typedCopy(v, Ctor) {
  /** @type {ArrayBuffer} */
  let buf = new ArrayBuffer(0);
  if (v instanceof ArrayBuffer) buf = v.slice(0);
  else if (ArrayBuffer.isView(v)) buf = v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength);
  return /** @type {InstanceType<C>} */ (new Ctor(buf));
}

/** 32-bit FNV-1a of the bytes (exposed as `data-labels-hash` so tests can compare labels). */
function fnv1a(/** @type {Int8Array} */ a) {
  let h = 0x811c9dc5;
  for (let i = 0; i < a.length; i++) h = Math.imul(h ^ (a[i] & 0xff), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, "0");
}

/** "mm:ss.ff" (hundredths), with hours when needed. */
function formatTime(/** @type {number} */ sec) {
  if (!Number.isFinite(sec) || sec < 0) sec = 0;
  const cs = Math.round(sec * 100);
  const h = Math.floor(cs / 360000);
  const m = Math.floor((cs % 360000) / 6000);
  const s = Math.floor((cs % 6000) / 100);
  const f = cs % 100;
  const p2 = (/** @type {number} */ x) => String(x).padStart(2, "0");
  return `${h ? `${h}:${p2(m)}` : p2(m)}:${p2(s)}.${p2(f)}`;
}

/** Ruler label: "m:ss" at whole seconds, else "m:ss.ff". */
function rulerTime(/** @type {number} */ sec) {
  const whole = Math.abs(sec - Math.round(sec)) < 1e-6;
  const t = formatTime(sec);
  const short = t.replace(/^0(\d:)/, "$1");
  return whole ? short.slice(0, -3) : short;
}

/**
 * Create an element.
 * @param {string} tag
 * @param {Record<string, any>} [props]
 * @param {(Node | string)[]} [children]
 * @returns {HTMLElement}
 */
function h(tag, props = {}, children = []) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") el.className = v;
    else if (k === "style") Object.assign(el.style, v);
    else if (k.startsWith("data-") || k === "title" || k === "role") el.setAttribute(k, v);
    else /** @type {any} */ (el)[k] = v;
  }
  for (const c of children) el.append(c);
  return el;
}

/** A toolbar button that never takes focus away from the widget root. */
function button(/** @type {string} */ text, /** @type {string} */ title, /** @type {() => void} */ onClick) {
  const b = h("button", { class: "deg-lab-btn", title, tabIndex: -1, type: "button" }, [text]);
  b.addEventListener("mousedown", (e) => e.preventDefault());
  b.addEventListener("click", (e) => {
    e.preventDefault();
    onClick();
  });
  return /** @type {HTMLButtonElement} */ (b);
}

/** LRU cache of decoded frames; evicted bitmaps are closed to free their memory. */
class FrameCache {
  constructor(/** @type {number} */ capacity) {
    this.capacity = capacity;
    /** @type {Map<number, ImageBitmap>} */
    this.map = new Map();
  }
  has(/** @type {number} */ i) {
    return this.map.has(i);
  }
  /** The bitmap of frame `i`, marked as recently used. */
  get(/** @type {number} */ i) {
    const b = this.map.get(i);
    if (b) {
      this.map.delete(i);
      this.map.set(i, b);
    }
    return b;
  }
  put(/** @type {number} */ i, /** @type {ImageBitmap} */ bmp) {
    const old = this.map.get(i);
    if (old && old !== bmp) old.close();
    this.map.delete(i);
    this.map.set(i, bmp);
    while (this.map.size > this.capacity) {
      const first = this.map.entries().next().value;
      if (!first) break;
      this.map.delete(first[0]);
      first[1].close();
    }
  }
  /** Index of the cached frame nearest to `i` (-1 when empty). */
  nearest(/** @type {number} */ i) {
    if (this.map.has(i)) return i;
    let best = -1;
    let dist = Infinity;
    for (const k of this.map.keys()) {
      const d = Math.abs(k - i);
      if (d < dist || (d === dist && k < best)) {
        best = k;
        dist = d;
      }
    }
    return best;
  }
  clear() {
    for (const b of this.map.values()) b.close();
    this.map.clear();
  }
}

/**
 * Requests frames from Python around the playhead and decodes the replies.
 * Request ids are unique per view (several views of one model all receive every reply);
 * replies to requests made before the last `reset()` (another video) are dropped.
 */
class FrameLoader {
  /**
   * @param {Model} model
   * @param {FrameCache} cache
   * @param {(index: number) => void} onFrame called when a frame is decoded and cached
   * @param {() => void} onIdle called when a prefetch request completes
   * @param {(index: number) => void} onReply called when a frame's JPEG arrives
   */
  constructor(model, cache, onFrame, onIdle, onReply) {
    this.onReply = onReply;
    this.model = model;
    this.cache = cache;
    this.onFrame = onFrame;
    this.onIdle = onIdle;
    this.base = (1 + Math.floor(Math.random() * 999999)) * 1000000;
    this.next = 0;
    this.firstOfGen = this.base;
    this.gen = 0;
    /** @type {Map<number, {left: Set<number>, t: number, prefetch: boolean}>} */
    this.pending = new Map();
    /** @type {Set<number>} */
    this.inflight = new Set();
  }

  /** Forget everything (the video changed). */
  reset() {
    this.gen++;
    this.firstOfGen = this.base + this.next;
    this.pending.clear();
    this.inflight.clear();
    this.cache.clear();
  }

  /** @param {number[]} indices @param {boolean} prefetch */
  request(indices, prefetch) {
    const req = this.base + this.next++;
    this.pending.set(req, { left: new Set(indices), t: performance.now(), prefetch });
    for (const i of indices) this.inflight.add(i);
    this.model.send({ type: "frames", req, indices });
  }

  expire() {
    const now = performance.now();
    for (const [req, p] of this.pending) {
      if (now - p.t > REQ_TIMEOUT_MS) {
        for (const i of p.left) this.inflight.delete(i);
        this.pending.delete(req);
      }
    }
  }

  /**
   * Make sure frame `f` and its neighbourhood are cached or on their way.
   * @param {number} f playhead
   * @param {number} n number of frames
   * @param {number} ahead frames wanted after `f`
   */
  ensure(f, n, ahead) {
    if (n <= 0 || f < 0 || f >= n) return;
    this.expire();
    const missing = (/** @type {number} */ i) => !this.cache.has(i) && !this.inflight.has(i);
    // The exact frame goes alone, and the batch around it only once it is here: the kernel
    // answers in order, so a batch sent now would delay the exact frame of the next seek.
    if (missing(f)) this.request([f], false);
    if (!this.cache.has(f)) return; // onFrame(f) calls back
    let busy = 0;
    for (const p of this.pending.values()) if (p.prefetch) busy++;
    // Small batches, nearest first, ahead before behind: frames after f continue the
    // kernel's forward decode, while frames behind need a seek back to a key frame; and a
    // small batch keeps the wait short for a seek that comes while it is being decoded.
    while (busy < MAX_PREFETCH) {
      /** @type {number[]} */
      const want = [];
      for (let d = 1; d <= ahead && want.length < CHUNK; d++) {
        if (f + d < n && missing(f + d)) want.push(f + d);
      }
      if (!want.length) {
        for (let d = 1; d <= BEHIND && want.length < CHUNK; d++) {
          if (f - d >= 0 && missing(f - d)) want.push(f - d);
        }
      }
      if (!want.length) return;
      this.request(want, true);
      busy++;
    } // onIdle() calls back when one completes
  }

  /**
   * A `frames` reply: one JPEG buffer per index.
   * @param {{req: number, indices: number[]}} msg
   * @param {DataView[]} buffers
   */
  receive(msg, buffers) {
    const req = msg.req;
    if (!(req >= this.firstOfGen && req < this.base + this.next)) return; // stale or not ours
    const gen = this.gen;
    const p = this.pending.get(req);
    msg.indices.forEach((index, j) => {
      const buf = buffers[j];
      if (p) p.left.delete(index);
      this.onReply(index);
      if (!buf) {
        this.inflight.delete(index);
        return;
      }
      createImageBitmap(new Blob([buf], { type: "image/jpeg" })).then(
        (bmp) => {
          if (gen !== this.gen) {
            bmp.close();
            return;
          }
          this.inflight.delete(index);
          this.cache.put(index, bmp);
          this.onFrame(index);
        },
        (err) => {
          this.inflight.delete(index);
          console.warn("deg labeler: frame", index, "did not decode:", err);
        },
      );
    });
    if (p && p.left.size === 0) {
      this.pending.delete(req);
      if (p.prefetch) this.onIdle();
    }
  }
}

/**
 * One view of a Labeler.
 */
class LabelerView {
  /** @param {Model} model @param {HTMLElement} el */
  constructor(model, el) {
    this.model = model;
    this.el = el;
    this.frame = 0;
    this.n = 0;
    this.K = 0;
    this.labels = new Int8Array(0);
    this.probs = new Uint8Array(0);
    this.predicted = new Int8Array(0);
    /** @type {LocalEdit[]} */
    this.localEdits = [];
    /** @type {Recording | null} */
    this.rec = null;
    /** @type {string | null} video requested by the picker, not yet loaded by Python */
    this.switchingTo = null;
    /** @type {number | null} selected behaviour (for n / p) */
    this.selected = null;
    this.eHeld = false;
    this.groupCount = 0;
    // timeline view, in frames
    this.viewStart = 0;
    this.viewSpan = 1;
    // frame view zoom/pan (device px)
    this.zoom = 1;
    this.panX = 0;
    this.panY = 0;
    this.paintedFrame = -1;
    /** @type {PendingTiming | null} */
    this.timing = null;
    this.playRaf = 0;
    this.playT0 = 0;
    this.playF0 = 0;
    this.lastSync = 0;
    this.drawRaf = 0;
    this.needFrame = true;
    this.needTimeline = true;
    this.needBase = true;
    /**
     * A timeline drag: "pan" (ruler), "paint" (label row) or "seek" (other rows).
     * @type {{mode: string, k: number, anchor: number, cur: number, value: number,
     *   x0: number, y0: number, start0: number, moved: boolean} | null}
     */
    this.drag = null;
    /** @type {{x: number, y: number, panX: number, panY: number} | null} */
    this.framePan = null;
    this.dpr = window.devicePixelRatio || 1;

    this.cache = new FrameCache(CACHE_SIZE);
    this.loader = new FrameLoader(
      model,
      this.cache,
      (i) => {
        if (this.timing && this.timing.frame === i) this.timing.decodedAt = performance.now();
        if (i === this.frame) this.ensureFrames(); // now the neighbours
        if (i === this.frame || this.paintedFrame !== this.frame) this.schedule("frame");
      },
      () => this.ensureFrames(),
      (i) => {
        if (this.timing && this.timing.frame === i) this.timing.replyAt = performance.now();
      },
    );
    this.build();
    this.bindModel();
    this.readAll();
    this.resetView();
    this.layout();
  }

  // ------------------------------------------------------------------ DOM
  build() {
    const m = this.model;
    this.root = h("div", {
      class: "deg-lab",
      tabIndex: 0,
      "data-lm-suppress-shortcuts": "true", // JupyterLab's command-mode keys stay out
    });
    this.videoSelect = /** @type {HTMLSelectElement} */ (
      h("select", { class: "deg-lab-video", title: "video" })
    );
    this.videoSelect.addEventListener("change", () => {
      const v = this.videoSelect.value;
      this.root.focus();
      if (v === m.get("video")) return;
      this.stopRecording();
      if (m.get("playing")) m.set("playing", false);
      this.switchingTo = v; // until Python's state for it arrives (see settle)
      m.set("video", v);
      m.save_changes();
    });
    this.playBtn = button("▶", "play / pause (Space)", () => this.togglePlay());
    this.speedSelect = /** @type {HTMLSelectElement} */ (
      h("select", { class: "deg-lab-speed", title: "playback speed" })
    );
    this.speedSelect.addEventListener("change", () => {
      m.set("speed", Number(this.speedSelect.value));
      m.save_changes();
      this.root.focus();
    });
    this.frameText = h("span", { class: "deg-lab-frame-text" });
    this.timeText = h("span", { class: "deg-lab-time-text" });
    this.recText = h("span", { class: "deg-lab-rec" });
    this.saveBtn = button("Save", "save now (Ctrl+S)", () => this.send({ type: "save" }));
    this.savedText = h("span", { class: "deg-lab-saved" });
    this.undoBtn = button("↶", "undo (Ctrl+Z)", () => this.undo());
    this.redoBtn = button("↷", "redo (Ctrl+Shift+Z)", () => this.redo());
    this.importBtn = button(
      "Import predictions",
      "predictions onto unlabelled frames (i); Shift+click: onto all frames",
      () => {},
    );
    this.importBtn.onclick = (e) => {
      e.preventDefault();
      this.importPredictions(e.shiftKey);
    };
    this.finalizeBtn = button("Finalize", "unlabelled → absent for the whole video (Shift+F)", () =>
      this.finalize(),
    );
    this.helpBtn = button("?", "keyboard and mouse shortcuts (?)", () => this.toggleHelp());
    const toolbar = h("div", { class: "deg-lab-toolbar" }, [
      this.videoSelect,
      this.playBtn,
      this.speedSelect,
      this.frameText,
      this.timeText,
      this.recText,
      h("span", { class: "deg-lab-spacer" }),
      this.undoBtn,
      this.redoBtn,
      this.saveBtn,
      this.savedText,
      this.importBtn,
      this.finalizeBtn,
      this.helpBtn,
    ]);

    this.frameCanvas = /** @type {HTMLCanvasElement} */ (h("canvas", { class: "deg-lab-frame" }));
    this.help = h("div", { class: "deg-lab-help", style: { display: "none" } }, [
      h("div", { class: "deg-lab-help-title" }, ["Shortcuts (while the labeler has focus)"]),
      h(
        "div",
        { class: "deg-lab-help-grid" },
        HELP.flatMap(([k, v]) => [h("span", { class: "deg-lab-key" }, [k]), h("span", {}, [v])]),
      ),
    ]);
    this.help.addEventListener("click", () => this.toggleHelp(false));
    const stage = h("div", { class: "deg-lab-stage" }, [this.frameCanvas, this.help]);

    this.scrub = /** @type {HTMLInputElement} */ (
      h("input", { class: "deg-lab-scrub", type: "range", min: "0", max: "0", step: "1", tabIndex: -1 })
    );
    this.scrub.addEventListener("input", (e) => {
      this.markInput(e, "scrub");
      this.seek(Number(this.scrub.value));
    });
    this.scrub.addEventListener("change", () => this.root.focus());

    this.timeline = /** @type {HTMLCanvasElement} */ (h("canvas", { class: "deg-lab-timeline" }));
    this.base = document.createElement("canvas"); // rows without the playhead

    this.errorBox = h("div", { class: "deg-lab-error", role: "alert" });
    this.conflictBox = h("div", { class: "deg-lab-conflict", role: "alert" }, [
      h("span", {}, [
        "The labels file changed on disk since this Labeler loaded it. Your edits are kept in " +
          "the journal: reload to take the other changes (yours are re-applied on top), or " +
          "overwrite the file with yours.",
      ]),
      button("Reload", "re-read the file; your unsaved edits are re-applied on top", () =>
        this.serverOp({ type: "reload" }),
      ),
      button("Overwrite", "save(force=True): replace the file on disk with these labels", () => {
        if (window.confirm("Replace the labels file on disk (and the other changes) with yours?")) {
          this.serverOp({ type: "save", force: true });
        }
      }),
    ]);
    this.statusText = h("span", { class: "deg-lab-status-text" });
    const statusBar = h("div", { class: "deg-lab-status" }, [
      this.statusText,
      h("span", { class: "deg-lab-spacer" }),
      h("span", { class: "deg-lab-focus-hint" }, ["click the labeler to use the keyboard ·"]),
      h("span", {}, ["? help"]),
    ]);

    this.root.append(toolbar, stage, this.scrub, this.timeline, this.errorBox, this.conflictBox, statusBar);
    this.el.append(this.root);

    this.root.addEventListener("keydown", (e) => this.onKeyDown(e));
    this.root.addEventListener("keyup", (e) => {
      if (e.key === "e" || e.key === "E") this.eHeld = false;
      e.stopPropagation();
    });
    this.root.addEventListener("focus", () => this.root.classList.add("deg-lab-focused"));
    this.root.addEventListener("blur", () => {
      this.root.classList.remove("deg-lab-focused");
      this.eHeld = false;
    });
    this.root.addEventListener("mousedown", (e) => {
      const t = /** @type {HTMLElement} */ (e.target);
      if (t.tagName !== "SELECT") this.root.focus({ preventScroll: true });
    });

    this.bindFrameCanvas();
    this.bindTimeline();
    this.resizeObserver = new ResizeObserver(() => this.layout());
    this.resizeObserver.observe(this.root);
  }

  // ------------------------------------------------------------------ model
  bindModel() {
    const m = this.model;
    /** @type {[string, (...a: any[]) => void][]} */
    this.handlers = [
      ["msg:custom", (msg, buffers) => {
        if (msg && msg.type === "frames") this.loader.receive(msg, buffers || []);
      }],
      ["change:video", () => {
        this.loader.reset();
        this.stopRecording();
        this.localEdits = [];
        this.zoom = 1;
        this.panX = this.panY = 0;
        this.paintedFrame = -1;
        if (this.switchingTo !== null && m.get("video") === this.switchingTo) {
          // our own switch: until Python sends the new video's state, show nothing stale
          // (and ask for no frames: the old frame index may not exist in the new video)
          this.n = 0;
          this.labels = new Int8Array(0);
          this.labelsChanged();
          this.updateFrameText();
          this.schedule("all");
          return;
        }
        this.switchingTo = null;
        this.loadVideo();
      }],
      ["change:videos", () => this.readToolbar()],
      ["change:behaviors", () => { if (!this.settle()) { this.readAll(); this.layout(); } }],
      ["change:n_frames", () => { if (!this.settle()) this.loadVideo(); }],
      ["change:labels", () => {
        if (this.settle()) return;
        this.readLabels();
        this.schedule("base");
      }],
      ["change:probs change:predicted change:has_predictions change:thresholds", () => {
        this.readPredictions();
        this.layout();
      }],
      ["change:frame", () => {
        if (this.settle() || this.model.get("playing")) return; // the play loop owns the playhead
        const f = this.model.get("frame") | 0;
        if (f !== this.frame) this.setFrame(f, false);
      }],
      ["change:playing", () => this.readPlaying()],
      ["change:speed", () => {
        this.playT0 = performance.now();
        this.playF0 = this.frame;
        this.readToolbar();
      }],
      ["change:fps change:frame_width change:frame_height", () => { this.readToolbar(); this.layout(); }],
      [
        "change:dirty change:saved_at change:can_undo change:can_redo change:status " +
          "change:error change:lock_conflict",
        () => {
          this.readStatus();
          this.settle();
        },
      ],
    ];
    for (const [ev, cb] of this.handlers) m.on(ev, cb);
  }

  /** Everything about the current video, from the model. */
  loadVideo() {
    this.readAll();
    this.resetView();
    this.layout();
    this.ensureFrames();
  }

  /**
   * After the front end switched video, the first update from Python carries the new
   * video's state: load it. True if it did.
   */
  settle() {
    if (this.switchingTo === null) return false;
    this.switchingTo = null;
    this.loadVideo();
    return true;
  }

  readAll() {
    const m = this.model;
    this.n = Math.max(0, m.get("n_frames") | 0);
    this.K = (m.get("behaviors") || []).length;
    this.frame = Math.min(Math.max(0, m.get("frame") | 0), Math.max(0, this.n - 1));
    this.readLabels();
    this.readPredictions();
    this.readToolbar();
    this.readStatus();
    this.readPlaying();
  }

  readLabels() {
    const a = typedCopy(this.model.get("labels"), Int8Array);
    this.labels = a.length === this.n * this.K ? a : new Int8Array(this.n * this.K).fill(-1);
    const now = performance.now();
    this.localEdits = this.localEdits.filter((e) => now - e.t < LOCAL_EDIT_MS);
    for (const e of this.localEdits) this.applyEdit(e.behavior, e.start, e.stop, e.value);
    this.labelsChanged();
  }

  readPredictions() {
    const m = this.model;
    this.hasPred = !!m.get("has_predictions");
    const p = typedCopy(m.get("probs"), Uint8Array);
    const q = typedCopy(m.get("predicted"), Int8Array);
    const size = this.n * this.K;
    this.probs = p.length === size ? p : new Uint8Array(0);
    this.predicted = q.length === size ? q : new Int8Array(0);
    this.root.dataset.hasPredictions = String(this.hasPred);
    this.needBase = true;
  }

  readToolbar() {
    const m = this.model;
    const videos = m.get("videos") || [];
    const video = m.get("video") || "";
    const sel = this.videoSelect;
    if (sel.options.length !== videos.length || [...sel.options].some((o, i) => o.value !== videos[i])) {
      sel.replaceChildren(...videos.map((/** @type {string} */ v) => h("option", { value: v }, [v])));
    }
    sel.value = video;
    this.root.dataset.video = video;
    const speed = Number(m.get("speed")) || 1;
    const speeds = SPEEDS.includes(speed) ? SPEEDS : [...SPEEDS, speed].sort((a, b) => a - b);
    if (this.speedSelect.options.length !== speeds.length) {
      this.speedSelect.replaceChildren(...speeds.map((s) => h("option", { value: String(s) }, [`${s}×`])));
    }
    this.speedSelect.value = String(speed);
    this.fps = Number(m.get("fps")) || 30;
    this.updateFrameText();
  }

  readStatus() {
    const m = this.model;
    const dirty = !!m.get("dirty");
    const savedAt = m.get("saved_at") || "";
    this.savedText.textContent = dirty
      ? "● unsaved"
      : savedAt
        ? `saved ${savedAt.replace(/^.*T/, "").replace(/\..*$/, "").replace(/[+-]\d\d:?\d\d$|Z$/, "")}`
        : "";
    this.savedText.classList.toggle("deg-lab-dirty", dirty);
    this.root.dataset.dirty = String(dirty);
    this.undoBtn.disabled = !m.get("can_undo");
    this.redoBtn.disabled = !m.get("can_redo");
    this.statusText.textContent = m.get("status") || "";
    const err = m.get("error") || "";
    this.errorBox.textContent = err;
    this.errorBox.style.display = err ? "" : "none";
    this.conflictBox.style.display = m.get("lock_conflict") ? "" : "none";
  }

  readPlaying() {
    const playing = !!this.model.get("playing");
    this.playBtn.textContent = playing ? "⏸" : "▶";
    this.root.dataset.playing = String(playing);
    if (playing && !this.playRaf) {
      if (this.frame >= this.n - 1) this.setFrame(0, false);
      this.playT0 = performance.now();
      this.playF0 = this.frame;
      this.playRaf = requestAnimationFrame((t) => this.playTick(t));
    } else if (!playing && this.playRaf) {
      cancelAnimationFrame(this.playRaf);
      this.playRaf = 0;
      this.syncFrame();
    }
  }

  /** @param {any} content */
  send(content) {
    this.model.send(content);
  }

  // ------------------------------------------------------------------ playhead
  /**
   * Move the playhead here (Python is told by `syncFrame`).
   * @param {number} f
   * @param {boolean} user a user action (extends a recording; synced to Python)
   */
  setFrame(f, user) {
    if (this.n <= 0) return;
    f = Math.min(Math.max(0, Math.round(f)), this.n - 1);
    this.frame = f;
    if (this.timing && this.timing.frame < 0) {
      this.timing.frame = f;
      this.timing.cached = this.cache.has(f);
    }
    if (user && this.rec) this.extendRecording();
    this.follow();
    this.updateFrameText();
    this.ensureFrames();
    this.schedule("frame");
    this.schedule("timeline");
    if (user && !this.model.get("playing")) this.syncFrame();
  }

  /** A user seek to frame `f`. */
  seek(/** @type {number} */ f) {
    this.setFrame(f, true);
  }

  /** Tell Python the playhead and any recorded range (at most ~10x/s while playing). */
  syncFrame() {
    this.lastSync = performance.now();
    if ((this.model.get("frame") | 0) !== this.frame) {
      this.model.set("frame", this.frame);
      this.model.save_changes();
    }
    this.flushRecording();
  }

  ensureFrames() {
    const playing = !!this.model.get("playing");
    const speed = Number(this.model.get("speed")) || 1;
    const ahead = playing ? Math.min(120, Math.max(AHEAD, Math.ceil(this.fps * speed * 1.5))) : AHEAD;
    this.loader.ensure(this.frame, this.n, ahead);
  }

  togglePlay() {
    this.model.set("playing", !this.model.get("playing"));
    this.model.save_changes();
    this.readPlaying();
  }

  /** @param {number} now */
  playTick(now) {
    this.playRaf = 0;
    if (!this.model.get("playing")) return;
    const speed = Number(this.model.get("speed")) || 1;
    const f = Math.min(this.n - 1, this.playF0 + Math.floor(((now - this.playT0) / 1000) * this.fps * speed));
    if (f !== this.frame) this.setFrame(f, true);
    if (now - this.lastSync >= PLAY_SYNC_MS) this.syncFrame();
    if (f >= this.n - 1) {
      this.model.set("playing", false);
      this.model.save_changes();
      this.readPlaying();
      this.syncFrame();
      return;
    }
    this.playRaf = requestAnimationFrame((t) => this.playTick(t));
  }

  updateFrameText() {
    this.frameText.textContent = `frame ${this.frame} / ${this.n}`;
    this.timeText.textContent = formatTime(this.frame / (this.fps || 30));
    this.scrub.max = String(Math.max(0, this.n - 1));
    this.scrub.value = String(this.frame);
    this.root.dataset.frame = String(this.frame);
    this.root.dataset.nFrames = String(this.n);
  }

  /** Keep the playhead inside the timeline's view. */
  follow() {
    const f = this.frame;
    if (f < this.viewStart || f + 1 > this.viewStart + this.viewSpan) {
      this.setView(f + 0.5 - this.viewSpan / 2, this.viewSpan);
    }
  }

  // ------------------------------------------------------------------ editing
  newGroup() {
    return `g${Date.now().toString(36)}-${++this.groupCount}`;
  }

  /**
   * Apply an edit to the local copy (what Python will do), so the timeline answers at once.
   * @param {number} b behaviour (-1: all) @param {number} start @param {number} stop
   * @param {number} v value
   */
  applyEdit(b, start, stop, v) {
    const K = this.K;
    start = Math.max(0, start);
    stop = Math.min(this.n, stop);
    for (let f = start; f < stop; f++) {
      if (b < 0) this.labels.fill(v, f * K, f * K + K);
      else this.labels[f * K + b] = v;
    }
  }

  /**
   * Set labels[start:stop, behavior] = value (behavior -1: all) in Python and, optimistically, here.
   * @param {number} behavior @param {number} start @param {number} stop @param {number} value
   * @param {string | null} [group]
   */
  edit(behavior, start, stop, value, group = null) {
    if (stop <= start) return;
    const msg = { type: "set", behavior, start, stop, value };
    if (group) /** @type {any} */ (msg).group = group;
    this.syncFrame();
    this.send(msg);
    this.localEdits.push({ behavior, start, stop, value, t: performance.now() });
    this.applyEdit(behavior, start, stop, value);
    this.labelsChanged();
    this.schedule("base");
  }

  toggleFrame(/** @type {number} */ b, /** @type {number} */ f) {
    const v = this.labels[f * this.K + b] === 1 ? 0 : 1;
    this.send({ type: "toggle", behavior: b, frame: f });
    this.localEdits.push({ behavior: b, start: f, stop: f + 1, value: v, t: performance.now() });
    this.applyEdit(b, f, f + 1, v);
    this.labelsChanged();
    this.schedule("base");
  }

  /** Python-side operations that change labels wholesale: drop the optimistic copy. */
  serverOp(/** @type {any} */ msg) {
    this.stopRecording();
    this.syncFrame();
    this.localEdits = [];
    this.send(msg);
  }

  undo() {
    this.serverOp({ type: "undo" });
  }

  redo() {
    this.serverOp({ type: "redo" });
  }

  importPredictions(/** @type {boolean} */ overwrite) {
    if (!this.model.get("has_predictions")) {
      this.statusText.textContent = "no predictions for this video";
      return;
    }
    if (overwrite && !window.confirm("Import predictions onto ALL frames, replacing your labels?")) return;
    this.serverOp({ type: "import_predictions", overwrite });
  }

  finalize() {
    const video = this.model.get("video");
    const ok = window.confirm(
      `Finalize ${video}: every unlabelled frame becomes "absent" for every behaviour. Continue?`,
    );
    if (ok) this.serverOp({ type: "finalize" });
  }

  /** Number key k: toggle behaviour k here and start recording it (k again stops). */
  behaviorKey(/** @type {number} */ k) {
    if (k >= this.K || this.n <= 0) return;
    if (this.rec && this.rec.behavior === k) {
      this.stopRecording();
      return;
    }
    this.stopRecording();
    const f = this.frame;
    const value = this.labels[f * this.K + k] === 1 ? 0 : 1;
    // a one-frame `set` rather than `toggle`: it shares the recording's undo group
    this.rec = { behavior: k, value, anchor: f, group: this.newGroup(), sent: "" };
    this.selected = k;
    this.flushRecording();
    this.updateRecText();
    this.schedule("base");
  }

  /** x: erase the playhead frame, or (while recording) the recorded range, for all behaviours. */
  eraseKey() {
    if (this.n <= 0) return;
    if (this.rec) {
      this.rec = { ...this.rec, behavior: -1, value: -1, sent: "" };
      this.flushRecording();
      this.updateRecText();
      return;
    }
    this.edit(-1, this.frame, this.frame + 1, -1);
  }

  extendRecording() {
    if (!this.rec) return;
    const [a, b] = this.recRange();
    this.applyEdit(this.rec.behavior, a, b, this.rec.value); // shown now; sent by syncFrame
    this.labelsChanged();
    this.schedule("base");
  }

  recRange() {
    const r = /** @type {Recording} */ (this.rec);
    return [Math.min(r.anchor, this.frame), Math.max(r.anchor, this.frame) + 1];
  }

  flushRecording() {
    const r = this.rec;
    if (!r) return;
    const [a, b] = this.recRange();
    const key = `${r.behavior}:${a}:${b}:${r.value}`;
    if (key === r.sent) return;
    r.sent = key;
    this.send({ type: "set", behavior: r.behavior, start: a, stop: b, value: r.value, group: r.group });
    this.localEdits.push({ behavior: r.behavior, start: a, stop: b, value: r.value, t: performance.now() });
    this.applyEdit(r.behavior, a, b, r.value);
    this.labelsChanged();
    this.schedule("base");
  }

  stopRecording() {
    if (!this.rec) return;
    this.flushRecording();
    this.rec = null;
    this.updateRecText();
  }

  updateRecText() {
    const r = this.rec;
    const names = this.model.get("behaviors") || [];
    if (!r) {
      this.recText.textContent = "";
      this.root.dataset.recording = "";
      return;
    }
    const what = r.behavior < 0 ? "erase" : `${names[r.behavior]} ${r.value === 1 ? "present" : "absent"}`;
    this.recText.textContent = `● REC ${what} from ${r.anchor}`;
    this.recText.style.color = r.behavior < 0 ? "#555" : PALETTE[r.behavior % PALETTE.length];
    this.root.dataset.recording = String(r.behavior);
  }

  /** Labels changed here: refresh what depends on them. */
  labelsChanged() {
    let labeled = 0;
    for (let i = 0; i < this.labels.length; i++) if (this.labels[i] !== -1) labeled++;
    this.root.dataset.labeledCount = String(labeled);
    this.root.dataset.labelsHash = fnv1a(this.labels);
    this.needBase = true;
  }

  /** @param {"uncertain" | "disagree" | "next_bout" | "prev_bout"} target @param {number} direction */
  seekTarget(target, direction) {
    this.stopRecording();
    this.syncFrame();
    this.send({ type: "seek", target, behavior: this.selected, direction });
  }

  // ------------------------------------------------------------------ keyboard
  /** @param {KeyboardEvent} e */
  onKeyDown(e) {
    const t = /** @type {HTMLElement} */ (e.target);
    if (t.tagName === "SELECT") return; // let the picker work
    e.stopPropagation(); // JupyterLab must not see keys meant for the labeler
    const key = e.key;
    const mod = e.ctrlKey || e.metaKey;
    let handled = true;
    if (mod) {
      const k = key.toLowerCase();
      if (k === "z") e.shiftKey ? this.redo() : this.undo();
      else if (k === "y") this.redo();
      else if (k === "s") this.serverOp({ type: "save" });
      else handled = false;
    } else if (/^[1-9]$/.test(key) && !e.altKey) {
      this.behaviorKey(Number(key) - 1);
    } else {
      switch (key) {
        case "ArrowRight":
        case "ArrowLeft": {
          this.markInput(e, "step");
          const d = (key === "ArrowRight" ? 1 : -1) * (e.shiftKey ? 10 : 1);
          this.seek(this.frame + d);
          break;
        }
        case "Home":
          this.markInput(e, "seek");
          this.seek(0);
          break;
        case "End":
          this.markInput(e, "seek");
          this.seek(this.n - 1);
          break;
        case " ":
          this.togglePlay();
          break;
        case "Escape":
          this.stopRecording();
          this.toggleHelp(false);
          break;
        case "x":
        case "X":
        case "Delete":
        case "Backspace":
          this.eraseKey();
          break;
        case "e":
        case "E":
          this.eHeld = true;
          break;
        case "n":
          this.seekTarget("next_bout", 1);
          break;
        case "p":
          this.seekTarget("prev_bout", -1);
          break;
        case "u":
        case "U":
          this.seekTarget("uncertain", key === "u" ? 1 : -1);
          break;
        case "d":
        case "D":
          this.seekTarget("disagree", key === "d" ? 1 : -1);
          break;
        case "i":
          this.importPredictions(false);
          break;
        case "F":
          this.finalize();
          break;
        case "?":
          this.toggleHelp();
          break;
        case "+":
        case "=":
          this.zoomTimeline(0.5, this.frame + 0.5);
          break;
        case "-":
        case "_":
          this.zoomTimeline(2, this.frame + 0.5);
          break;
        default:
          handled = false;
      }
    }
    if (handled) e.preventDefault();
  }

  toggleHelp(/** @type {boolean | undefined} */ show) {
    const visible = show ?? this.help.style.display === "none";
    this.help.style.display = visible ? "" : "none";
  }

  /**
   * Start a keypress-to-paint timing sample (only with `debug_timing`).
   * @param {Event} e @param {string} kind
   */
  markInput(e, kind) {
    if (!this.model.get("debug_timing")) return;
    this.timing = { kind, frame: -1, t0: e.timeStamp || performance.now(), cached: false };
  }

  /** The frame for the playhead was painted: close the timing sample. */
  recordTiming() {
    const t = this.timing;
    if (!t || t.frame !== this.frame) return;
    this.timing = null;
    const w = /** @type {any} */ (window);
    w.__degLabelerTimings = w.__degLabelerTimings || [];
    const since = (/** @type {number | undefined} */ at) => (at === undefined ? null : at - t.t0);
    w.__degLabelerTimings.push({
      kind: t.kind,
      frame: t.frame,
      cached: t.cached,
      ms: performance.now() - t.t0,
      reply_ms: since(t.replyAt), // JPEG arrived (request + kernel + transport)
      decoded_ms: since(t.decodedAt), // ImageBitmap ready
    });
  }

  // ------------------------------------------------------------------ layout and drawing
  layout() {
    const width = Math.max(200, this.root.clientWidth - 2);
    this.dpr = window.devicePixelRatio || 1;
    const fw = this.model.get("frame_width") || 4;
    const fh = this.model.get("frame_height") || 3;
    const maxH = Math.max(160, Math.round(window.innerHeight * 0.55));
    const frameH = Math.min(maxH, Math.round((width * fh) / fw));
    this.sizeCanvas(this.frameCanvas, width, frameH);
    this.sizeCanvas(this.timeline, width, this.timelineHeight());
    this.sizeCanvas(this.base, width, this.timelineHeight());
    this.clampView();
    this.schedule("all");
  }

  /** @param {HTMLCanvasElement} c @param {number} w @param {number} hgt */
  sizeCanvas(c, w, hgt) {
    const W = Math.round(w * this.dpr);
    const H = Math.round(hgt * this.dpr);
    if (c.width !== W) c.width = W;
    if (c.height !== H) c.height = H;
    c.style.width = `${w}px`;
    c.style.height = `${hgt}px`;
  }

  /** Rows: ruler, K label rows, then (with predictions) K probability rows and K prediction rows. */
  rows() {
    const labelY = RULER_H + 2;
    const probY = labelY + this.K * LABEL_H + GAP;
    const predY = probY + this.K * PROB_H + GAP;
    const pred = this.hasPred && this.probs.length > 0;
    const height = pred ? predY + this.K * PRED_H + 4 : labelY + this.K * LABEL_H + 4;
    return { labelY, probY, predY, pred, height };
  }

  timelineHeight() {
    return this.rows().height;
  }

  plot() {
    const w = this.timeline.width / this.dpr;
    return { x: GUTTER, w: Math.max(10, w - GUTTER - RIGHT_PAD) };
  }

  minSpan() {
    return Math.min(this.n, Math.max(4, Math.round(this.plot().w / 40)));
  }

  resetView() {
    this.viewStart = 0;
    this.viewSpan = Math.max(1, this.n);
  }

  clampView() {
    const n = Math.max(1, this.n);
    this.viewSpan = Math.min(n, Math.max(this.minSpan() || 1, this.viewSpan));
    this.viewStart = Math.min(Math.max(0, this.viewStart), n - this.viewSpan);
    this.publishGeometry();
  }

  /** @param {number} start @param {number} span */
  setView(start, span) {
    this.viewStart = start;
    this.viewSpan = span;
    this.clampView();
    this.schedule("base");
  }

  /** Zoom by `factor` (< 1 zooms in) keeping frame position `at` fixed on screen. */
  zoomTimeline(/** @type {number} */ factor, /** @type {number} */ at) {
    const span = Math.min(this.n, Math.max(this.minSpan(), this.viewSpan * factor));
    const start = at - ((at - this.viewStart) * span) / this.viewSpan;
    this.setView(start, span);
  }

  frameToX(/** @type {number} */ f) {
    const p = this.plot();
    return p.x + ((f - this.viewStart) / this.viewSpan) * p.w;
  }

  xToFrame(/** @type {number} */ x) {
    const p = this.plot();
    const f = Math.floor(this.viewStart + ((x - p.x) / p.w) * this.viewSpan);
    return Math.min(Math.max(0, f), this.n - 1);
  }

  /** @param {"frame" | "timeline" | "base" | "all"} what */
  schedule(what) {
    if (what === "frame" || what === "all") this.needFrame = true;
    if (what === "timeline" || what === "all") this.needTimeline = true;
    if (what === "base" || what === "all") {
      this.needBase = true;
      this.needTimeline = true;
    }
    if (!this.drawRaf) {
      this.drawRaf = requestAnimationFrame(() => {
        this.drawRaf = 0;
        if (this.needBase) this.drawBase();
        if (this.needTimeline) this.drawTimeline();
        if (this.needFrame) this.drawFrame();
      });
    }
  }

  drawFrame() {
    this.needFrame = false;
    const c = this.frameCanvas;
    const ctx = /** @type {CanvasRenderingContext2D} */ (c.getContext("2d"));
    const W = c.width;
    const H = c.height;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#111";
    ctx.fillRect(0, 0, W, H);
    const idx = this.cache.nearest(this.frame);
    if (idx < 0) {
      this.paintedFrame = -1;
      this.root.dataset.paintedFrame = "-1";
      return;
    }
    const bmp = /** @type {ImageBitmap} */ (this.cache.get(idx));
    const s = Math.min(W / bmp.width, H / bmp.height);
    const dw = bmp.width * s;
    const dh = bmp.height * s;
    ctx.setTransform(this.zoom, 0, 0, this.zoom, this.panX, this.panY);
    ctx.imageSmoothingEnabled = this.zoom < 4; // show the pixels once the user zooms far in
    ctx.drawImage(bmp, (W - dw) / 2, (H - dh) / 2, dw, dh);
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    if (idx !== this.frame) {
      ctx.fillStyle = "rgba(0,0,0,0.6)";
      ctx.fillRect(0, 0, 150 * this.dpr, 20 * this.dpr);
      ctx.fillStyle = "#fff";
      ctx.font = `${12 * this.dpr}px sans-serif`;
      ctx.fillText(`loading frame ${this.frame}…`, 6 * this.dpr, 14 * this.dpr);
    }
    this.paintedFrame = idx;
    this.root.dataset.paintedFrame = String(idx);
    if (idx === this.frame) this.recordTiming();
  }

  /** The hatch used for unlabelled frames. */
  hatch(/** @type {CanvasRenderingContext2D} */ ctx) {
    if (!this.hatchPattern) {
      const t = document.createElement("canvas");
      t.width = t.height = 6;
      const g = /** @type {CanvasRenderingContext2D} */ (t.getContext("2d"));
      g.fillStyle = "#fff";
      g.fillRect(0, 0, 6, 6);
      g.strokeStyle = "#aaa";
      g.lineWidth = 1;
      g.beginPath();
      g.moveTo(0, 6);
      g.lineTo(6, 0);
      g.moveTo(-1, 1);
      g.lineTo(1, -1);
      g.moveTo(5, 7);
      g.lineTo(7, 5);
      g.stroke();
      this.hatchPattern = ctx.createPattern(t, "repeat");
    }
    return /** @type {CanvasPattern} */ (this.hatchPattern);
  }

  /**
   * Runs of equal state across the plot. Zoomed out, each CSS pixel column aggregates the frames
   * under it (so 54,000 frames cost one pass, never one element per frame); zoomed in, each
   * frame is one run.
   * @param {(f0: number, f1: number) => number} stateOf aggregate state of frames [f0, f1)
   * @returns {number[]} flat [x0, x1, state, ...]
   */
  runs(stateOf) {
    const p = this.plot();
    const fpp = this.viewSpan / p.w; // frames per CSS px
    /** @type {number[]} */
    const out = [];
    const push = (/** @type {number} */ x0, /** @type {number} */ x1, /** @type {number} */ s) => {
      const L = out.length;
      if (L && out[L - 1] === s && Math.abs(out[L - 2] - x0) < 0.01) out[L - 2] = x1;
      else out.push(x0, x1, s);
    };
    if (fpp <= 1) {
      const f0 = Math.max(0, Math.floor(this.viewStart));
      const f1 = Math.min(this.n, Math.ceil(this.viewStart + this.viewSpan));
      for (let f = f0; f < f1; f++) {
        const x0 = Math.max(p.x, this.frameToX(f));
        const x1 = Math.min(p.x + p.w, this.frameToX(f + 1));
        if (x1 > x0) push(x0, x1, stateOf(f, f + 1));
      }
    } else {
      const cols = Math.ceil(p.w);
      for (let c = 0; c < cols; c++) {
        const f0 = Math.floor(this.viewStart + c * fpp);
        const f1 = Math.min(this.n, Math.max(f0 + 1, Math.floor(this.viewStart + (c + 1) * fpp)));
        if (f0 >= this.n) break;
        push(p.x + c, Math.min(p.x + p.w, p.x + c + 1), stateOf(f0, f1));
      }
    }
    return out;
  }

  /** Rows without the playhead, redrawn only when data or the view change. */
  drawBase() {
    this.needBase = false;
    const t0 = performance.now();
    this.renderBase();
    if (this.model.get("debug_timing")) {
      const w = /** @type {any} */ (window);
      w.__degLabelerDrawTimings = w.__degLabelerDrawTimings || [];
      w.__degLabelerDrawTimings.push({ ms: performance.now() - t0, frames: this.n, behaviors: this.K });
    }
  }

  renderBase() {
    const c = this.base;
    const ctx = /** @type {CanvasRenderingContext2D} */ (c.getContext("2d"));
    const d = this.dpr;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, c.width, c.height);
    ctx.setTransform(d, 0, 0, d, 0, 0);
    const W = c.width / d;
    const p = this.plot();
    const R = this.rows();
    const K = this.K;
    const names = this.model.get("behaviors") || [];
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, W, R.height);
    this.drawRuler(ctx, p);
    ctx.font = "12px sans-serif";
    ctx.textBaseline = "middle";
    const L = this.labels;
    for (let k = 0; k < K; k++) {
      const y = R.labelY + k * LABEL_H;
      const colour = PALETTE[k % PALETTE.length];
      // gutter: key number and name; the selected behaviour is bold
      ctx.fillStyle = colour;
      ctx.fillRect(4, y + 3, 10, LABEL_H - 6);
      ctx.fillStyle = "#222";
      ctx.font = `${this.selected === k ? "bold " : ""}12px sans-serif`;
      const label = `${k < 9 ? `${k + 1} ` : ""}${names[k] ?? k}`;
      ctx.fillText(this.fit(ctx, label, GUTTER - 24), 18, y + LABEL_H / 2);
      const runs = this.runs((f0, f1) => {
        let unl = false;
        for (let f = f0; f < f1; f++) {
          const v = L[f * K + k];
          if (v === 1) return 2;
          if (v === -1) unl = true;
        }
        return unl ? 1 : 0; // present wins (short bouts stay visible), then unlabelled
      });
      for (let i = 0; i < runs.length; i += 3) {
        const s = runs[i + 2];
        ctx.fillStyle = s === 2 ? colour : s === 1 ? this.hatch(ctx) : ABSENT;
        ctx.fillRect(runs[i], y, runs[i + 1] - runs[i], LABEL_H - 2);
      }
    }
    if (R.pred) {
      const P = this.probs;
      const Q = this.predicted;
      ctx.font = "9px sans-serif";
      for (let k = 0; k < K; k++) {
        const colour = PALETTE[k % PALETTE.length];
        const y = R.probY + k * PROB_H;
        ctx.fillStyle = "#555";
        ctx.fillText(this.fit(ctx, `P ${names[k] ?? k}`, GUTTER - 20), 18, y + PROB_H / 2);
        const runs = this.runs((f0, f1) => {
          let mx = 0;
          for (let f = f0; f < f1; f++) mx = Math.max(mx, P[f * K + k]);
          return mx >> 3; // 32 levels
        });
        ctx.fillStyle = "#fff";
        ctx.fillRect(p.x, y, p.w, PROB_H - 1);
        ctx.fillStyle = colour;
        for (let i = 0; i < runs.length; i += 3) {
          if (!runs[i + 2]) continue;
          ctx.globalAlpha = runs[i + 2] / 31;
          ctx.fillRect(runs[i], y, runs[i + 1] - runs[i], PROB_H - 1);
        }
        ctx.globalAlpha = 1;
      }
      for (let k = 0; k < K; k++) {
        const colour = PALETTE[k % PALETTE.length];
        const y = R.predY + k * PRED_H;
        ctx.fillStyle = "#555";
        ctx.fillText(this.fit(ctx, `pred ${names[k] ?? k}`, GUTTER - 20), 18, y + PRED_H / 2);
        const runs = this.runs((f0, f1) => {
          for (let f = f0; f < f1; f++) if (Q.length && Q[f * K + k] === 1) return 1;
          return 0;
        });
        for (let i = 0; i < runs.length; i += 3) {
          ctx.fillStyle = runs[i + 2] ? colour : "#f0f0f0";
          ctx.fillRect(runs[i], y, runs[i + 1] - runs[i], PRED_H - 1);
        }
      }
    }
    // frame boundaries once frames are wide enough to tell apart
    const ppf = p.w / this.viewSpan;
    if (ppf >= 8) {
      ctx.fillStyle = "rgba(255,255,255,0.7)";
      for (let f = Math.ceil(this.viewStart); f < this.viewStart + this.viewSpan; f++) {
        ctx.fillRect(Math.round(this.frameToX(f)), R.labelY, 1, R.height - R.labelY - 4);
      }
    }
    this.publishGeometry();
  }

  /**
   * The mapping clicks use, on the canvas for tests and tools:
   * x(f) = plotX + (f - viewStart) / viewSpan * plotW (CSS px from the canvas's left edge);
   * label row k spans labelY + k * labelRowH .. + labelRowH. Updated as soon as the view
   * changes (before the redraw), as the pointer handlers see it.
   */
  publishGeometry() {
    const p = this.plot();
    const R = this.rows();
    const ds = this.timeline.dataset;
    ds.viewStart = String(this.viewStart);
    ds.viewSpan = String(this.viewSpan);
    ds.plotX = String(p.x);
    ds.plotW = String(p.w);
    ds.labelY = String(R.labelY);
    ds.labelRowH = String(LABEL_H);
    ds.probY = R.pred ? String(R.probY) : "";
    ds.predY = R.pred ? String(R.predY) : "";
    ds.nBehaviors = String(this.K);
  }

  /** Truncate `s` to `w` px. */
  fit(/** @type {CanvasRenderingContext2D} */ ctx, /** @type {string} */ s, /** @type {number} */ w) {
    if (ctx.measureText(s).width <= w) return s;
    while (s.length > 1 && ctx.measureText(`${s}…`).width > w) s = s.slice(0, -1);
    return `${s}…`;
  }

  /** Time ruler with ticks at a readable spacing (frames below a second, clock time above). */
  drawRuler(/** @type {CanvasRenderingContext2D} */ ctx, /** @type {{x: number, w: number}} */ p) {
    ctx.fillStyle = "#f4f4f4";
    ctx.fillRect(p.x, 0, p.w, RULER_H);
    const fps = this.fps || 30;
    const ppf = p.w / this.viewSpan;
    const steps = [1, 2, 5, 10, 25, 50];
    for (const s of [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200]) {
      steps.push(Math.max(1, Math.round(s * fps)));
    }
    steps.sort((a, b) => a - b);
    const step = steps.find((s) => s * ppf >= 64) ?? steps[steps.length - 1];
    ctx.strokeStyle = "#888";
    ctx.fillStyle = "#333";
    ctx.font = "10px sans-serif";
    ctx.textBaseline = "top";
    ctx.beginPath();
    const first = Math.ceil(this.viewStart / step) * step;
    for (let f = first; f <= this.viewStart + this.viewSpan; f += step) {
      const x = Math.round(this.frameToX(f)) + 0.5;
      ctx.moveTo(x, RULER_H - 7);
      ctx.lineTo(x, RULER_H);
      const text = step < fps ? String(f) : rulerTime(f / fps);
      if (x + 2 < p.x + p.w - 10) ctx.fillText(text, x + 2, 2);
    }
    ctx.stroke();
    ctx.fillStyle = "#555";
    ctx.textBaseline = "middle";
    ctx.fillText(step < fps ? "frame" : "time", 4, RULER_H / 2);
  }

  /** Blit the rows, then the playhead and any drag preview. */
  drawTimeline() {
    this.needTimeline = false;
    const c = this.timeline;
    const ctx = /** @type {CanvasRenderingContext2D} */ (c.getContext("2d"));
    const d = this.dpr;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, c.width, c.height);
    if (this.base.width && this.base.height) ctx.drawImage(this.base, 0, 0);
    ctx.setTransform(d, 0, 0, d, 0, 0);
    const R = this.rows();
    const p = this.plot();
    const dr = this.drag;
    if (dr && dr.mode === "paint" && dr.moved) {
      const a = Math.min(dr.anchor, dr.cur);
      const b = Math.max(dr.anchor, dr.cur) + 1;
      const x0 = Math.max(p.x, this.frameToX(a));
      const x1 = Math.min(p.x + p.w, this.frameToX(b));
      const y = R.labelY + dr.k * LABEL_H;
      ctx.fillStyle =
        dr.value === 1 ? PALETTE[dr.k % PALETTE.length] : dr.value === 0 ? "#bbb" : this.hatch(ctx);
      ctx.globalAlpha = 0.75;
      ctx.fillRect(x0, y, Math.max(1, x1 - x0), LABEL_H - 2);
      ctx.globalAlpha = 1;
      ctx.strokeStyle = "#000";
      ctx.strokeRect(x0 + 0.5, y + 0.5, Math.max(1, x1 - x0) - 1, LABEL_H - 3);
    }
    if (this.n > 0 && this.frame >= this.viewStart && this.frame < this.viewStart + this.viewSpan) {
      const x0 = this.frameToX(this.frame);
      const x1 = this.frameToX(this.frame + 1);
      if (x1 - x0 >= 3) {
        ctx.fillStyle = "rgba(224,16,42,0.18)";
        ctx.fillRect(x0, 0, x1 - x0, R.height);
      }
      const xm = Math.round((x0 + x1) / 2);
      ctx.fillStyle = PLAYHEAD;
      ctx.fillRect(xm - 1, 0, 2, R.height);
      ctx.beginPath();
      ctx.moveTo(xm - 5, 0);
      ctx.lineTo(xm + 5, 0);
      ctx.lineTo(xm, 6);
      ctx.fill();
    }
  }

  // ------------------------------------------------------------------ mouse
  bindFrameCanvas() {
    const c = this.frameCanvas;
    c.addEventListener(
      "wheel",
      (e) => {
        e.preventDefault();
        const r = c.getBoundingClientRect();
        const px = (e.clientX - r.left) * this.dpr;
        const py = (e.clientY - r.top) * this.dpr;
        const z = Math.min(32, Math.max(1, this.zoom * Math.exp(-e.deltaY * 0.0015)));
        if (z === 1) {
          this.zoom = 1;
          this.panX = this.panY = 0;
        } else {
          // keep the image point under the cursor where it is
          this.panX = px - ((px - this.panX) * z) / this.zoom;
          this.panY = py - ((py - this.panY) * z) / this.zoom;
          this.zoom = z;
        }
        this.schedule("frame");
      },
      { passive: false },
    );
    c.addEventListener("pointerdown", (e) => {
      if (e.button !== 0) return;
      c.setPointerCapture(e.pointerId);
      this.framePan = { x: e.clientX, y: e.clientY, panX: this.panX, panY: this.panY };
    });
    c.addEventListener("pointermove", (e) => {
      const fp = this.framePan;
      if (!fp || this.zoom === 1) return;
      this.panX = fp.panX + (e.clientX - fp.x) * this.dpr;
      this.panY = fp.panY + (e.clientY - fp.y) * this.dpr;
      this.schedule("frame");
    });
    const end = () => {
      this.framePan = null;
    };
    c.addEventListener("pointerup", end);
    c.addEventListener("pointercancel", end);
    c.addEventListener("dblclick", () => {
      this.zoom = 1;
      this.panX = this.panY = 0;
      this.schedule("frame");
    });
  }

  /** Which row is at y (CSS px): ruler, label k, prob k, pred k or none. */
  hitRow(/** @type {number} */ y) {
    const R = this.rows();
    if (y < RULER_H) return { kind: "ruler", k: -1 };
    const inRows = (/** @type {number} */ top, /** @type {number} */ hgt) => {
      const k = Math.floor((y - top) / hgt);
      return y >= top && k < this.K ? k : -1;
    };
    let k = inRows(R.labelY, LABEL_H);
    if (k >= 0) return { kind: "label", k };
    if (R.pred) {
      k = inRows(R.probY, PROB_H);
      if (k >= 0) return { kind: "prob", k };
      k = inRows(R.predY, PRED_H);
      if (k >= 0) return { kind: "pred", k };
    }
    return { kind: "none", k: -1 };
  }

  bindTimeline() {
    const c = this.timeline;
    const local = (/** @type {MouseEvent} */ e) => {
      const r = c.getBoundingClientRect();
      return { x: e.clientX - r.left, y: e.clientY - r.top };
    };
    c.addEventListener("contextmenu", (e) => e.preventDefault());
    c.addEventListener(
      "wheel",
      (e) => {
        e.preventDefault();
        const { x } = local(e);
        const p = this.plot();
        const horizontal = e.shiftKey || Math.abs(e.deltaX) > Math.abs(e.deltaY);
        if (horizontal) {
          const delta = e.shiftKey && !e.deltaX ? e.deltaY : e.deltaX;
          this.setView(this.viewStart + (delta / p.w) * this.viewSpan, this.viewSpan);
        } else {
          const at = this.viewStart + ((x - p.x) / p.w) * this.viewSpan;
          this.zoomTimeline(Math.exp(e.deltaY * 0.002), at);
        }
      },
      { passive: false },
    );
    c.addEventListener("pointerdown", (e) => {
      const { x, y } = local(e);
      const p = this.plot();
      const hit = this.hitRow(y);
      this.root.focus({ preventScroll: true });
      e.preventDefault();
      if (x < p.x) {
        if (hit.kind === "label") {
          this.selected = this.selected === hit.k ? null : hit.k;
          this.schedule("base");
        }
        return;
      }
      if (this.n <= 0) return;
      c.setPointerCapture(e.pointerId);
      const f = this.xToFrame(x);
      const base = {
        k: hit.k, anchor: f, cur: f, value: 1,
        x0: x, y0: y, start0: this.viewStart, moved: false,
      };
      if (e.button === 1 || hit.kind === "ruler") {
        this.drag = { ...base, mode: "pan" };
      } else if (hit.kind === "label") {
        const value = e.button === 2 || this.eHeld ? -1 : e.altKey ? 0 : 1;
        if (e.shiftKey) {
          const a = Math.min(this.frame, f);
          const b = Math.max(this.frame, f) + 1;
          this.stopRecording();
          this.edit(hit.k, a, b, value);
        } else if (e.ctrlKey || e.metaKey) {
          this.stopRecording();
          this.toggleFrame(hit.k, f);
        } else {
          this.drag = { ...base, mode: "paint", value };
        }
      } else {
        this.drag = { ...base, mode: "seek" };
        this.markInput(e, "click");
        this.seek(f);
      }
    });
    c.addEventListener("pointermove", (e) => {
      const dr = this.drag;
      if (!dr) return;
      const { x } = local(e);
      if (Math.abs(x - dr.x0) > 3) dr.moved = true;
      if (dr.mode === "pan") {
        if (dr.moved) this.setView(dr.start0 - ((x - dr.x0) / this.plot().w) * this.viewSpan, this.viewSpan);
      } else if (dr.mode === "paint") {
        dr.cur = this.xToFrame(x);
        this.schedule("timeline");
      } else if (dr.mode === "seek") {
        this.seek(this.xToFrame(x));
      }
    });
    const up = (/** @type {PointerEvent} */ e) => {
      const dr = this.drag;
      this.drag = null;
      if (!dr) return;
      if (dr.mode === "pan" && !dr.moved) {
        this.markInput(e, "click");
        this.seek(dr.anchor);
      } else if (dr.mode === "paint") {
        if (dr.moved) {
          const a = Math.min(dr.anchor, dr.cur);
          const b = Math.max(dr.anchor, dr.cur) + 1;
          this.stopRecording();
          this.edit(dr.k, a, b, dr.value, this.newGroup());
        } else {
          this.markInput(e, "click");
          this.seek(dr.anchor); // a plain click seeks
        }
      }
      this.schedule("timeline");
    };
    c.addEventListener("pointerup", up);
    c.addEventListener("pointercancel", () => {
      this.drag = null;
      this.schedule("timeline");
    });
  }

  destroy() {
    for (const [ev, cb] of this.handlers || []) this.model.off(ev, cb);
    if (this.playRaf) cancelAnimationFrame(this.playRaf);
    if (this.drawRaf) cancelAnimationFrame(this.drawRaf);
    this.resizeObserver.disconnect();
    this.stopRecording();
    this.cache.clear();
    this.root.remove();
  }
}

export default {
  /** @param {{model: Model, el: HTMLElement}} ctx */
  render({ model, el }) {
    const view = new LabelerView(model, el);
    view.ensureFrames();
    return () => view.destroy();
  },
};
