// @ts-check
/**
 * Front end of `deg_widgets.Labeler` (anywidget ESM; plain JS, no bundler, no network imports).
 *
 * Python owns the labels: this file draws them and sends edit requests (`set`, `toggle`, ...).
 * Frames arrive on request as JPEG buffers (`{type: "frames", req, indices}` + one buffer per
 * index) and are kept as ImageBitmaps in an LRU cache. Label, probability and prediction arrays
 * arrive as Bytes traits: (n_frames, K) int8/uint8 in C order, read through typed-array views.
 *
 * Layout: toolbar / frame view (canvas) / scrub bar / ethogram timeline (canvas) / status bar.
 *
 * One file on purpose: anywidget imports `_esm` from a blob: URL made of this file's text, and
 * a blob: URL has no folder for `import "./x.js"` to resolve against. So the parts are classes
 * here, each owning its state and DOM; `LabelerView` wires them to the model and to each other:
 *
 * - `FrameCache`, `FrameLoader`: frames from Python (requests, decoding, LRU cache)
 * - `Labels`: the label / probability / prediction arrays, with optimistic local edits
 * - `Recorder`: edits sent to Python (number-key recording, ranges, toggles, undo, save, ...)
 * - `Player`: playback (a requestAnimationFrame loop on the wall clock)
 * - `Controls`: toolbar, scrub bar, banners and status bar (and the root's data- test hooks)
 * - `FrameView`: the frame canvas (draw the nearest cached frame, zoom, pan)
 * - `Timeline`: the ethogram (view in frames, geometry, drawing, hit-testing, pointer gestures)
 * - `KEYS`: the one key table, read by both the key handler and the "?" help overlay
 * - `Timing`: keypress-to-paint samples (`debug_timing`)
 *
 * A video of several animals (`n_animals` > 1; see deg_widgets/labeler.py) adds an animal
 * picker, every animal's box on the frame (follow mode centres and zooms on the selected one) and
 * one block of label rows per animal; edits still go as before: Python applies them to the
 * selected animal (`animal`). A one-animal video shows none of it.
 *
 * The JSDoc types are checked: `npx tsc -p tsconfig.json` at the repository root (.ci/run).
 */

/**
 * The synced traits (see deg_widgets/labeler.py). Bytes traits arrive as DataViews.
 * @typedef {{
 *   videos: string[], video: string, behaviors: string[], exclusive: boolean,
 *   n_frames: number, fps: number,
 *   frame_width: number, frame_height: number, frame: number, labels: unknown,
 *   has_predictions: boolean, probs: unknown, predicted: unknown, thresholds: number[],
 *   playing: boolean, speed: number, dirty: boolean, saved_at: string, can_undo: boolean,
 *   can_redo: boolean, status: string, error: string, lock_conflict: boolean,
 *   debug_timing: boolean, palette: string[], labeler: string, annotators: string[],
 *   reference: string, reference_labels: unknown,
 *   n_animals: number, animal: number, animal_names: string[], animal_labels: unknown,
 *   tracks: unknown, swap_frames: number[], follow: boolean,
 * }} Traits
 */

/**
 * The part of anywidget's model API this file uses, typed by trait name.
 * @typedef {{
 *   get<N extends keyof Traits>(name: N): Traits[N],
 *   set<N extends keyof Traits>(name: N, value: Traits[N]): void,
 *   save_changes(): void,
 *   on(event: string, cb: (...args: any[]) => void): void,
 *   off(event?: string | null, cb?: ((...args: any[]) => void) | null): void,
 *   send(content: object, callbacks?: unknown, buffers?: ArrayBuffer[]): void,
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
/** @typedef {"uncertain" | "disagree" | "annotators" | "next_bout" | "prev_bout"} SeekTarget */
/**
 * An animal's box at a frame, in source video px: centre x, y, width, height.
 * @typedef {[number, number, number, number]} Box
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
// Behaviour k's colour: deg_core.report.charts.PALETTE, sent as the `palette` trait so the
// Labeler, the charts and the TrainingMonitor agree (set when the view starts).
/** @type {string[]} */
let PALETTE = ["#777777"];
const ABSENT = "#e2e2e2";
const PLAYHEAD = "#e0102a";

// Timeline geometry (CSS px).
const RULER_H = 20;
const LABEL_H = 18;
const PROB_H = 10;
const PRED_H = 10;
const REF_H = 12; // a reference annotator's row
const DISAGREE = "#d62728"; // where the two annotators differ
const GAP = 6;
const GUTTER = 124;
const RIGHT_PAD = 8;

// Several animals: each one's colour (its box on the frame, its name in the timeline), the
// timeline's heading row above each animal's block, and the swap candidates' marks on the ruler.
const ANIMAL_COLOURS = ["#00e5ff", "#ffd600", "#ff4081", "#76ff03", "#ff9100", "#b388ff"];
const ANIMAL_H = 16;
const BLOCK_GAP = 4; // between two animals' blocks
const SWAP = "#ff6d00";
const NO_TRACKS = "no tracks: deg tracks PROJECT VIDEO --compute";
const MAX_ZOOM = 32; // the frame view's

// ==================================================================== helpers

/**
 * Copy of a Bytes trait as a typed array (the trait arrives as a DataView over a message buffer).
 * @template {Int8ArrayConstructor | Uint8ArrayConstructor} C
 * @param {unknown} v
 * @param {C} Ctor
 * @returns {InstanceType<C>}
 */
function typedCopy(v, Ctor) {
  /** @type {ArrayBuffer} */
  let buf = new ArrayBuffer(0);
  if (v instanceof ArrayBuffer) buf = v.slice(0);
  else if (ArrayBuffer.isView(v)) buf = new Uint8Array(v.buffer, v.byteOffset, v.byteLength).slice().buffer;
  return /** @type {InstanceType<C>} */ (new Ctor(buf));
}

/** Copy of a Bytes trait of float32 values (empty unless a whole number of them). */
function float32Copy(/** @type {unknown} */ v) {
  const b = typedCopy(v, Uint8Array);
  return b.length % 4 ? new Float32Array(0) : new Float32Array(b.buffer);
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
 * @template {keyof HTMLElementTagNameMap} T
 * @param {T} tag
 * @param {Record<string, any>} [props]
 * @param {(Node | string)[]} [children]
 * @returns {HTMLElementTagNameMap[T]}
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

/**
 * A toolbar button that never takes focus away from the widget root.
 * @param {string} text @param {string} title @param {(e: MouseEvent) => void} onClick
 */
function button(text, title, onClick) {
  const b = h("button", { class: "deg-lab-btn", title, tabIndex: -1, type: "button" }, [text]);
  b.addEventListener("mousedown", (e) => e.preventDefault());
  b.addEventListener("click", (e) => {
    e.preventDefault();
    onClick(e);
  });
  return b;
}

/** Size a canvas to w x hgt CSS px, backed by device pixels (`dpr` per CSS px). */
function sizeCanvas(
  /** @type {HTMLCanvasElement} */ c,
  /** @type {number} */ w,
  /** @type {number} */ hgt,
  /** @type {number} */ dpr,
) {
  const W = Math.round(w * dpr);
  const H = Math.round(hgt * dpr);
  if (c.width !== W) c.width = W;
  if (c.height !== H) c.height = H;
  c.style.width = `${w}px`;
  c.style.height = `${hgt}px`;
}

/** Animal a's colour (its box on the frame, its name in the timeline). */
function animalColour(/** @type {number} */ a) {
  return ANIMAL_COLOURS[a % ANIMAL_COLOURS.length];
}

/** The 2-D context of a canvas (always there for a canvas we created). */
function ctx2d(/** @type {HTMLCanvasElement} */ c) {
  return /** @type {CanvasRenderingContext2D} */ (c.getContext("2d"));
}

// ==================================================================== keys

/**
 * A keyboard shortcut: one row of the help overlay and what the key handler runs.
 * `keys` are `KeyboardEvent.key` values, "Mod+" for Ctrl or ⌘ (the key then in lower case) and
 * "Shift+" where Shift changes the meaning; see `findKey` for how an event finds its row.
 * @typedef {{
 *   label: string,
 *   help: string,
 *   keys: string[],
 *   noAlt?: boolean,
 *   animals?: boolean,
 *   run: (v: LabelerView, e: KeyboardEvent) => void,
 * }} KeyBinding
 * `animals`: only on a video of several animals (elsewhere the key does nothing and the help
 * overlay leaves it out).
 */

/** @type {KeyBinding[]} Every shortcut; the "?" overlay lists them in this order. */
const KEYS = [
  { label: "1 … 9", keys: ["1", "2", "3", "4", "5", "6", "7", "8", "9"],
    help: "behaviour k at the playhead: toggle it and start recording; move to label a range; k again stops",
    noAlt: true, // Alt+digit stays the browser's (tab switching on Linux)
    run: (v, e) => v.recorder.behaviorKey(Number(e.key) - 1) },
  { label: "Esc", keys: ["Escape"], help: "stop recording (and close this help)",
    run: (v) => { v.recorder.stop(); v.toggleHelp(false); } },
  { label: "x / Delete / Backspace", keys: ["x", "X", "Delete", "Backspace"],
    help: "erase the playhead frame (all behaviours); while recording: erase the range",
    run: (v) => v.recorder.erase() },
  { label: "e (held)", keys: ["e", "E"], // released by LabelerView's keyup and blur handlers
    help: "a drag on a label row erases (as with the right button)",
    run: (v) => { v.eHeld = true; } },
  { label: "← / →", keys: ["ArrowLeft", "ArrowRight"], help: "previous / next frame",
    run: (v, e) => v.step(e, 1) },
  { label: "Shift+← / Shift+→", keys: ["Shift+ArrowLeft", "Shift+ArrowRight"],
    help: "10 frames back / forward", run: (v, e) => v.step(e, 10) },
  { label: "Home / End", keys: ["Home", "End"], help: "first / last frame",
    run: (v, e) => { v.timing.mark(e, "seek"); v.seek(e.key === "Home" ? 0 : v.data.n - 1); } },
  { label: "Space", keys: [" "], help: "play / pause", run: (v) => v.player.toggle() },
  { label: "Ctrl/⌘+Z", keys: ["Mod+z"], help: "undo", run: (v) => v.recorder.undo() },
  { label: "Ctrl/⌘+Shift+Z, Ctrl+Y", keys: ["Mod+Shift+z", "Mod+y"], help: "redo",
    run: (v) => v.recorder.redo() },
  { label: "Ctrl/⌘+S", keys: ["Mod+s"], help: "save now",
    run: (v) => v.recorder.serverOp({ type: "save" }) },
  { label: "n / p", keys: ["n", "p"], help: "next / previous bout (of the selected behaviour, else any)",
    run: (v, e) => (e.key === "n" ? v.seekTarget("next_bout", 1) : v.seekTarget("prev_bout", -1)) },
  // Shift shows in `key` itself ("U", "D", "F")
  { label: "u / Shift+U", keys: ["u", "U"], help: "next / previous uncertain frame (model)",
    run: (v, e) => v.seekTarget("uncertain", e.key === "u" ? 1 : -1) },
  { label: "d / Shift+D", keys: ["d", "D"],
    help: "next / previous disagreement of labels and predictions",
    run: (v, e) => v.seekTarget("disagree", e.key === "d" ? 1 : -1) },
  { label: "a / Shift+A", keys: ["a", "A"],
    help: "next / previous disagreement between annotators (you and the reference row)",
    run: (v, e) => v.seekTarget("annotators", e.key === "a" ? 1 : -1) },
  { label: "[ / ]", keys: ["[", "]"], help: "previous / next animal", animals: true,
    run: (v, e) => v.stepAnimal(e.key === "]" ? 1 : -1) },
  { label: "c", keys: ["c"], help: "follow the selected animal (centre and zoom on it) on / off",
    animals: true, run: (v) => v.toggleFollow() },
  { label: "s / Shift+S", keys: ["s", "S"],
    help: "next / previous frame where the animals' identities may have swapped", animals: true,
    run: (v, e) => v.seekSwap(e.key === "s" ? 1 : -1) },
  { label: "w", keys: ["w"],
    help: "swap identities: the selected animal and the nearest other trade tracks from the playhead on (w again undoes)",
    animals: true, run: (v) => v.swapNearest() },
  { label: "i", keys: ["i"], help: "import predictions onto unlabelled frames",
    run: (v) => v.recorder.importPredictions(false) },
  { label: "Shift+F", keys: ["F"], help: "finalize: unlabelled → absent for the whole video (asks first)",
    run: (v) => v.recorder.finalize() },
  { label: "+ / -", keys: ["+", "=", "-", "_"], // with or without Shift on most layouts
    help: "zoom the timeline in / out",
    run: (v, e) => v.timeline.zoom(e.key === "+" || e.key === "=" ? 0.5 : 2, v.frame + 0.5) },
  { label: "?", keys: ["?"], help: "this help", run: (v) => v.toggleHelp() },
];

/**
 * Mouse gestures (FrameView's and Timeline's pointer handlers), listed after the keys; a third
 * item `true`: only on a video of several animals.
 * @type {[string, string, boolean?][]}
 */
const MOUSE_HELP = [
  ["timeline click", "seek"],
  ["click another animal's rows, or its box on the frame", "select that animal", true],
  ["drag on a label row", "label the range present (Alt: absent; right button or e held: erase)"],
  ["Shift+click on a label row", "label from the playhead to the click"],
  ["Ctrl/⌘+click on a label row", "toggle that frame"],
  ["click a behaviour name", "select it for n / p"],
  ["wheel on the timeline", "zoom around the cursor; Shift+wheel or drag the ruler: pan"],
  ["wheel / drag / double-click on the frame", "zoom / pan / reset"],
];

/** @type {Map<string, KeyBinding>} */
const KEY_INDEX = new Map();
for (const b of KEYS) {
  for (const k of b.keys) {
    if (KEY_INDEX.has(k)) throw new Error(`deg labeler: key ${k} bound twice`);
    KEY_INDEX.set(k, b);
  }
}

/**
 * The binding of a keydown, if any. With Ctrl or ⌘ only "Mod+" keys match. A "Shift+" key wins
 * while Shift is held; otherwise Shift does not matter (it already shows in `key`: "U", "?").
 * @param {KeyboardEvent} e
 */
function findKey(e) {
  const mod = e.ctrlKey || e.metaKey;
  const k = e.key || ""; // Chrome sends keydowns without a key for autofill
  const key = mod ? `Mod+${k.toLowerCase()}` : k;
  const shifted = e.shiftKey ? KEY_INDEX.get(key.replace(/^(Mod\+)?/, "$1Shift+")) : undefined;
  const b = shifted ?? KEY_INDEX.get(key);
  return b && !(b.noAlt && e.altKey) ? b : undefined;
}

/**
 * The "?" overlay: every row of KEYS, then the mouse gestures. Rows about animals carry the
 * class `deg-lab-multi-only` (the stylesheet hides them unless the root has `deg-lab-multi`).
 */
function helpOverlay() {
  /** @type {[string, string, boolean?][]} */
  const rows = [...KEYS.map((b) => /** @type {[string, string, boolean?]} */ ([b.label, b.help, b.animals]))];
  rows.push(...MOUSE_HELP);
  const only = (/** @type {boolean | undefined} */ a) => (a ? " deg-lab-multi-only" : "");
  return h("div", { class: "deg-lab-help", style: { display: "none" } }, [
    h("div", { class: "deg-lab-help-title" }, ["Shortcuts (while the labeler has focus)"]),
    h(
      "div",
      { class: "deg-lab-help-grid" },
      rows.flatMap(([k, v, a]) => [
        h("span", { class: `deg-lab-key${only(a)}` }, [k]),
        h("span", a ? { class: only(a).trim() } : {}, [v]),
      ]),
    ),
  ]);
}

// ==================================================================== frames

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
   * @param {DataView<ArrayBuffer>[]} buffers
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

// ==================================================================== labels and edits

/**
 * The current video's arrays, (n, K) in C order: labels (1 present, 0 absent, -1 unlabelled),
 * probabilities (uint8, P * 255) and thresholded predictions. Edits sent to Python are applied
 * here at once and re-applied over Python's labels until it echoes them (`LOCAL_EDIT_MS`), so
 * the timeline answers without waiting for the round trip.
 */
class Labels {
  constructor() {
    this.n = 0;
    this.K = 0;
    this.labels = new Int8Array(0);
    this.probs = new Uint8Array(0);
    this.predicted = new Int8Array(0);
    this.hasPred = false;
    this.exclusive = false; // one behaviour (or background) per frame: see apply
    this.reference = new Int8Array(0); // another annotator's labels, read-only (or empty)
    /** @type {LocalEdit[]} */
    this.localEdits = [];
    // several animals: `labels` above are the selected animal's
    this.nAnimals = 1;
    this.animal = 0;
    this.animalLabels = new Int8Array(0); // (nAnimals, n, K): every animal's (or empty)
    this.tracks = new Float32Array(0); // (n, nAnimals, 4): x, y, w, h in source px (or empty)
    /** @type {number[]} */
    this.swaps = []; // frames where identities may have swapped, sorted
    this.unlabelled = new Int8Array(0); // all -1: an animal whose labels are not here
  }

  /** Label of behaviour k at frame f. */
  at(/** @type {number} */ f, /** @type {number} */ k) {
    return this.labels[f * this.K + k];
  }

  /** Python's labels (a Bytes trait), with the recent local edits on top. */
  read(/** @type {unknown} */ bytes) {
    const a = typedCopy(bytes, Int8Array);
    this.labels = a.length === this.n * this.K ? a : new Int8Array(this.n * this.K).fill(-1);
    const now = performance.now();
    this.localEdits = this.localEdits.filter((e) => now - e.t < LOCAL_EDIT_MS);
    for (const e of this.localEdits) this.apply(e.behavior, e.start, e.stop, e.value);
  }

  /** @param {boolean} has @param {unknown} probs @param {unknown} predicted Bytes traits */
  readPredictions(has, probs, predicted) {
    this.hasPred = has;
    const p = typedCopy(probs, Uint8Array);
    const q = typedCopy(predicted, Int8Array);
    const size = this.n * this.K;
    this.probs = p.length === size ? p : new Uint8Array(0);
    this.predicted = q.length === size ? q : new Int8Array(0);
  }

  /** Another annotator's labels (a Bytes trait; empty: no reference row). */
  readReference(/** @type {unknown} */ bytes) {
    const r = typedCopy(bytes, Int8Array);
    this.reference = r.length === this.n * this.K && r.length > 0 ? r : new Int8Array(0);
  }

  /**
   * labels[start:stop, b] = v here (what Python will do); b -1: all behaviours. In an exclusive
   * project a behaviour marked present makes the others absent on those frames, as in Python.
   * @param {number} b @param {number} start @param {number} stop @param {number} v
   */
  apply(b, start, stop, v) {
    const K = this.K;
    start = Math.max(0, start);
    stop = Math.min(this.n, stop);
    const clear = b < 0 || (this.exclusive && v === 1);
    for (let f = start; f < stop; f++) {
      if (clear) this.labels.fill(b < 0 ? v : 0, f * K, f * K + K);
      if (b >= 0) this.labels[f * K + b] = v;
    }
  }

  /**
   * An edit just sent to Python: apply it and keep it until Python's labels include it.
   * @param {number} behavior @param {number} start @param {number} stop @param {number} value
   */
  local(behavior, start, stop, value) {
    this.localEdits.push({ behavior, start, stop, value, t: performance.now() });
    this.apply(behavior, start, stop, value);
  }

  /** Every animal's labels (a Bytes trait, (nAnimals, n, K); empty: none). */
  readAnimalLabels(/** @type {unknown} */ bytes) {
    const a = typedCopy(bytes, Int8Array);
    this.animalLabels = a.length === this.nAnimals * this.n * this.K ? a : new Int8Array(0);
  }

  /** The animals' boxes (a Bytes trait, (n, nAnimals, 4) float32; empty: no tracks). */
  readTracks(/** @type {unknown} */ bytes) {
    const t = float32Copy(bytes);
    this.tracks = t.length === this.n * this.nAnimals * 4 && t.length > 0 ? t : new Float32Array(0);
  }

  /** The animal whose box centre is nearest the selected one's at frame f (the other one of
   * two when a position is unknown); -1 without tracks. */
  nearestAnimal(/** @type {number} */ f) {
    const A = this.nAnimals;
    const t = this.tracks;
    if (!t.length || A < 2) return -1;
    const at = (/** @type {number} */ a) => (f * A + a) * 4;
    const x = t[at(this.animal)];
    const y = t[at(this.animal) + 1];
    let best = -1;
    let bestD = Infinity;
    for (let a = 0; a < A; a++) {
      if (a === this.animal) continue;
      const dist = (t[at(a)] - x) ** 2 + (t[at(a) + 1] - y) ** 2;
      if (dist < bestD) { // NaN (unknown) never wins
        bestD = dist;
        best = a;
      }
    }
    return best < 0 && A === 2 ? 1 - this.animal : best;
  }

  /** Animal a's labels: the selected one's live copy, the others' as Python last sent them. */
  labelsOf(/** @type {number} */ a) {
    if (a === this.animal) return this.labels;
    const size = this.n * this.K;
    if (this.animalLabels.length === this.nAnimals * size) {
      return this.animalLabels.subarray(a * size, (a + 1) * size);
    }
    if (this.unlabelled.length !== size) this.unlabelled = new Int8Array(size).fill(-1);
    return this.unlabelled;
  }

  /**
   * Select animal i at once (Python is told through the `animal` trait and answers with its
   * labels): the old animal's block keeps what it showed, the new one's labels start from its
   * last copy. The optimistic edits were the old animal's: dropped.
   */
  switchAnimal(/** @type {number} */ i) {
    const size = this.n * this.K;
    if (this.animalLabels.length === this.nAnimals * size && this.labels.length === size) {
      this.animalLabels.set(this.labels, this.animal * size);
      this.labels = this.animalLabels.slice(i * size, (i + 1) * size);
    }
    this.animal = i;
    this.localEdits = [];
  }

  /** Animal a's box at frame f, or null (no tracks, or not known there). @returns {Box | null} */
  box(/** @type {number} */ f, /** @type {number} */ a) {
    const t = this.tracks;
    const i = (f * this.nAnimals + a) * 4;
    if (!t.length || f < 0 || f >= this.n || a < 0 || a >= this.nAnimals) return null;
    const b = /** @type {Box} */ ([t[i], t[i + 1], t[i + 2], t[i + 3]]);
    return b.every(Number.isFinite) ? b : null;
  }

  labeledCount() {
    let labeled = 0;
    for (let i = 0; i < this.labels.length; i++) if (this.labels[i] !== -1) labeled++;
    return labeled;
  }
}

/**
 * Edit requests to Python: ranges, toggles, number-key recording (a range that follows the
 * playhead, one undo group) and the wholesale operations (undo, redo, save, import, finalize).
 */
class Recorder {
  constructor(/** @type {LabelerView} */ v) {
    this.v = v;
    /** @type {Recording | null} */
    this.rec = null;
    this.groupCount = 0;
  }

  newGroup() {
    return `g${Date.now().toString(36)}-${++this.groupCount}`;
  }

  /** Local edits changed the labels: show them. */
  changed() {
    this.v.labelsChanged();
    this.v.schedule("base");
  }

  /**
   * Set labels[start:stop, behavior] = value (behavior -1: all) in Python and, optimistically, here.
   * @param {number} behavior @param {number} start @param {number} stop @param {number} value
   * @param {string | null} [group]
   */
  edit(behavior, start, stop, value, group = null) {
    if (stop <= start) return;
    const msg = { type: "set", behavior, start, stop, value, ...(group ? { group } : {}) };
    this.v.syncFrame();
    this.v.send(msg);
    this.v.data.local(behavior, start, stop, value);
    this.changed();
  }

  toggleFrame(/** @type {number} */ b, /** @type {number} */ f) {
    const value = this.v.data.at(f, b) === 1 ? 0 : 1;
    this.v.send({ type: "toggle", behavior: b, frame: f });
    this.v.data.local(b, f, f + 1, value);
    this.changed();
  }

  /** Python-side operations that change labels wholesale: drop the optimistic copy. */
  serverOp(/** @type {{type: string, [k: string]: unknown}} */ msg) {
    this.stop();
    this.v.syncFrame();
    this.v.data.localEdits = [];
    this.v.send(msg);
  }

  undo() {
    this.serverOp({ type: "undo" });
  }

  redo() {
    this.serverOp({ type: "redo" });
  }

  importPredictions(/** @type {boolean} */ overwrite) {
    if (!this.v.model.get("has_predictions")) {
      this.v.controls.say("no predictions for this video");
      return;
    }
    if (overwrite && !window.confirm("Import predictions onto ALL frames, replacing your labels?")) return;
    this.serverOp({ type: "import_predictions", overwrite });
  }

  finalize() {
    const video = this.v.model.get("video");
    const ok = window.confirm(
      `Finalize ${video}: every unlabelled frame becomes "absent" for every behaviour. Continue?`,
    );
    if (ok) this.serverOp({ type: "finalize" });
  }

  /** Number key k: toggle behaviour k here and start recording it (k again stops). */
  behaviorKey(/** @type {number} */ k) {
    const v = this.v;
    if (k >= v.data.K || v.data.n <= 0) return;
    if (this.rec && this.rec.behavior === k) {
      this.stop();
      return;
    }
    this.stop();
    const f = v.frame;
    const value = v.data.at(f, k) === 1 ? 0 : 1;
    // a one-frame `set` rather than `toggle`: it shares the recording's undo group
    this.rec = { behavior: k, value, anchor: f, group: this.newGroup(), sent: "" };
    v.selected = k;
    this.flush();
    this.show();
    v.schedule("base");
  }

  /** x: erase the playhead frame, or (while recording) the recorded range, for all behaviours. */
  erase() {
    const v = this.v;
    if (v.data.n <= 0) return;
    if (this.rec) {
      this.rec = { ...this.rec, behavior: -1, value: -1, sent: "" };
      this.flush();
      this.show();
      return;
    }
    this.edit(-1, v.frame, v.frame + 1, -1);
  }

  /** The playhead moved while recording: show the longer range now (`flush` sends it). */
  extend() {
    if (!this.rec) return;
    const [a, b] = this.range(this.rec);
    this.v.data.apply(this.rec.behavior, a, b, this.rec.value);
    this.changed();
  }

  /** [start, stop) from the anchor to the playhead. */
  range(/** @type {Recording} */ r) {
    const f = this.v.frame;
    return [Math.min(r.anchor, f), Math.max(r.anchor, f) + 1];
  }

  /** Send the recorded range if it changed since it was last sent. */
  flush() {
    const r = this.rec;
    if (!r) return;
    const [a, b] = this.range(r);
    const key = `${r.behavior}:${a}:${b}:${r.value}`;
    if (key === r.sent) return;
    r.sent = key;
    this.v.send({ type: "set", behavior: r.behavior, start: a, stop: b, value: r.value, group: r.group });
    this.v.data.local(r.behavior, a, b, r.value);
    this.changed();
  }

  stop() {
    if (!this.rec) return;
    this.flush();
    this.rec = null;
    this.show();
  }

  /** Forget the recording without sending the rest of it (Python chose another animal). */
  cancel() {
    if (!this.rec) return;
    this.rec = null;
    this.show();
  }

  show() {
    this.v.controls.showRecording(this.rec);
  }
}

// ==================================================================== playback

/** Playback: the playhead follows the wall clock in a requestAnimationFrame loop. */
class Player {
  constructor(/** @type {LabelerView} */ v) {
    this.v = v;
    this.raf = 0;
    this.t0 = 0; // when playback (re)started ...
    this.f0 = 0; // ... and from which frame
  }

  /** Follow the `playing` trait: show it, start or stop the loop. */
  read() {
    const v = this.v;
    const playing = !!v.model.get("playing");
    v.controls.showPlaying(playing);
    if (playing && !this.raf) {
      if (v.frame >= v.data.n - 1) v.setFrame(0, false);
      this.restart();
      this.raf = requestAnimationFrame((t) => this.tick(t));
    } else if (!playing && this.raf) {
      cancelAnimationFrame(this.raf);
      this.raf = 0;
      v.syncFrame();
    }
  }

  /** Count from the current frame (playback starts, or the speed changed). */
  restart() {
    this.t0 = performance.now();
    this.f0 = this.v.frame;
  }

  toggle() {
    const m = this.v.model;
    m.set("playing", !m.get("playing"));
    m.save_changes();
    this.read();
  }

  /** @param {number} now */
  tick(now) {
    const v = this.v;
    const m = v.model;
    this.raf = 0;
    if (!m.get("playing")) return;
    const speed = Number(m.get("speed")) || 1;
    const f = Math.min(v.data.n - 1, this.f0 + Math.floor(((now - this.t0) / 1000) * v.fps * speed));
    if (f !== v.frame) v.setFrame(f, true);
    if (now - v.lastSync >= PLAY_SYNC_MS) v.syncFrame();
    if (f >= v.data.n - 1) {
      m.set("playing", false);
      m.save_changes();
      this.read();
      v.syncFrame();
      return;
    }
    this.raf = requestAnimationFrame((t) => this.tick(t));
  }

  destroy() {
    if (this.raf) cancelAnimationFrame(this.raf);
  }
}

// ==================================================================== controls

/**
 * The DOM around the canvases: toolbar, scrub bar, error and conflict banners, status bar.
 * It also keeps the root's data- attributes that tests and tools read (frame, video, ...).
 */
class Controls {
  constructor(/** @type {LabelerView} */ v) {
    this.v = v;
    const m = v.model;
    this.videoSelect = h("select", { class: "deg-lab-video", title: "video" });
    this.videoSelect.addEventListener("change", () => v.switchVideo(this.videoSelect.value));
    this.whoText = h("span", { class: "deg-lab-labeler", title: "whose labels you edit" });
    this.refSelect = h("select", { class: "deg-lab-reference", title: "reference annotator (read-only row)" });
    this.refSelect.addEventListener("change", () => {
      v.send({ type: "reference", labeler: this.refSelect.value || null });
      v.root.focus();
    });
    // several animals only (hidden otherwise): the selected animal and follow mode
    this.animalSelect = h("select", { class: "deg-lab-animal", title: "the animal you label ([ / ])" });
    this.animalSelect.style.display = "none";
    this.animalSelect.addEventListener("change", () => {
      v.selectAnimal(Number(this.animalSelect.value));
      v.root.focus();
    });
    this.followBtn = button("follow", "centre and zoom on the selected animal (c)", () => v.toggleFollow());
    this.followBtn.classList.add("deg-lab-follow");
    this.followBtn.style.display = "none";
    this.playBtn = button("▶", "play / pause (Space)", () => v.player.toggle());
    this.speedSelect = h("select", { class: "deg-lab-speed", title: "playback speed" });
    this.speedSelect.addEventListener("change", () => {
      m.set("speed", Number(this.speedSelect.value));
      m.save_changes();
      v.root.focus();
    });
    this.frameText = h("span", { class: "deg-lab-frame-text" });
    this.timeText = h("span", { class: "deg-lab-time-text" });
    this.recText = h("span", { class: "deg-lab-rec" });
    this.saveBtn = button("Save", "save now (Ctrl+S)", () => v.send({ type: "save" }));
    this.savedText = h("span", { class: "deg-lab-saved" });
    this.undoBtn = button("↶", "undo (Ctrl+Z)", () => v.recorder.undo());
    this.redoBtn = button("↷", "redo (Ctrl+Shift+Z)", () => v.recorder.redo());
    const importBtn = button(
      "Import predictions",
      "predictions onto unlabelled frames (i); Shift+click: onto all frames",
      (e) => v.recorder.importPredictions(e.shiftKey),
    );
    const finalizeBtn = button("Finalize", "unlabelled → absent for the whole video (Shift+F)", () =>
      v.recorder.finalize(),
    );
    const helpBtn = button("?", "keyboard and mouse shortcuts (?)", () => v.toggleHelp());
    this.toolbar = h("div", { class: "deg-lab-toolbar" }, [
      this.videoSelect,
      this.animalSelect,
      this.followBtn,
      this.whoText,
      this.refSelect,
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
      importBtn,
      finalizeBtn,
      helpBtn,
    ]);

    this.scrub = h("input", {
      class: "deg-lab-scrub", type: "range", min: "0", max: "0", step: "1", tabIndex: -1,
    });
    this.scrub.addEventListener("input", (e) => {
      v.timing.mark(e, "scrub");
      v.seek(Number(this.scrub.value));
    });
    this.scrub.addEventListener("change", () => v.root.focus());

    this.errorBox = h("div", { class: "deg-lab-error", role: "alert" });
    this.conflictBox = h("div", { class: "deg-lab-conflict", role: "alert" }, [
      h("span", {}, [
        "The labels file changed on disk since this Labeler loaded it. Your edits are kept in " +
          "the journal: reload to take the other changes (yours are re-applied on top), or " +
          "overwrite the file with yours.",
      ]),
      button("Reload", "re-read the file; your unsaved edits are re-applied on top", () =>
        v.recorder.serverOp({ type: "reload" }),
      ),
      button("Overwrite", "save(force=True): replace the file on disk with these labels", () => {
        if (window.confirm("Replace the labels file on disk (and the other changes) with yours?")) {
          v.recorder.serverOp({ type: "save", force: true });
        }
      }),
    ]);
    this.statusText = h("span", { class: "deg-lab-status-text" });
    this.statusBar = h("div", { class: "deg-lab-status" }, [
      this.statusText,
      h("span", { class: "deg-lab-spacer" }),
      h("span", { class: "deg-lab-focus-hint" }, ["click the labeler to use the keyboard ·"]),
      h("span", {}, ["? help"]),
    ]);
  }

  /** The video picker and the speed menu, from the model. */
  showVideos() {
    const m = this.v.model;
    const videos = m.get("videos") || [];
    const video = m.get("video") || "";
    const sel = this.videoSelect;
    if (sel.options.length !== videos.length || [...sel.options].some((o, i) => o.value !== videos[i])) {
      sel.replaceChildren(...videos.map((v) => h("option", { value: v }, [v])));
    }
    sel.value = video;
    this.v.root.dataset.video = video;
    const who = m.get("labeler") || "";
    this.whoText.textContent = who ? `labeler: ${who}` : "";
    const refs = ["", ...(m.get("annotators") || []).filter((a) => a !== who)];
    const ref = m.get("reference") || "";
    if (ref && !refs.includes(ref)) refs.push(ref);
    const rs = this.refSelect;
    if (rs.options.length !== refs.length || [...rs.options].some((o, i) => o.value !== refs[i])) {
      rs.replaceChildren(...refs.map((r) => h("option", { value: r }, [r ? `vs ${r}` : "no reference"])));
    }
    rs.value = ref;
    rs.style.display = refs.length > 1 ? "" : "none";
    this.v.root.dataset.reference = ref;
    const speed = Number(m.get("speed")) || 1;
    const speeds = SPEEDS.includes(speed) ? SPEEDS : [...SPEEDS, speed].sort((a, b) => a - b);
    if (this.speedSelect.options.length !== speeds.length) {
      this.speedSelect.replaceChildren(...speeds.map((s) => h("option", { value: String(s) }, [`${s}×`])));
    }
    this.speedSelect.value = String(speed);
  }

  /** The animal picker and the follow button (a video of several animals only). */
  showAnimals() {
    const v = this.v;
    const d = v.data;
    const multi = d.nAnimals > 1;
    const names = multi ? Array.from({ length: d.nAnimals }, (_, a) => v.animalName(a)) : [];
    const sel = this.animalSelect;
    if (sel.options.length !== names.length || [...sel.options].some((o, i) => o.textContent !== names[i])) {
      sel.replaceChildren(...names.map((name, a) => h("option", { value: String(a) }, [name])));
    }
    if (multi) sel.value = String(d.animal);
    sel.style.display = multi ? "" : "none";
    sel.style.borderLeft = multi ? `6px solid ${animalColour(d.animal)}` : "";
    this.followBtn.style.display = multi ? "" : "none";
    this.followBtn.classList.toggle("deg-lab-on", v.frameView.follow);
    const ds = v.root.dataset;
    ds.nAnimals = String(d.nAnimals);
    ds.animal = String(d.animal);
    v.root.classList.toggle("deg-lab-multi", multi);
  }

  /** The playhead: frame number, time and scrub bar. */
  showFrame(/** @type {number} */ frame, /** @type {number} */ n, /** @type {number} */ fps) {
    this.frameText.textContent = `frame ${frame} / ${n}`;
    this.timeText.textContent = formatTime(frame / (fps || 30));
    this.scrub.max = String(Math.max(0, n - 1));
    this.scrub.value = String(frame);
    const ds = this.v.root.dataset;
    ds.frame = String(frame);
    ds.nFrames = String(n);
  }

  /** Saved state, undo / redo, status line and banners, from the model. */
  showStatus() {
    const m = this.v.model;
    const dirty = !!m.get("dirty");
    const savedAt = m.get("saved_at") || "";
    this.savedText.textContent = dirty
      ? "● unsaved"
      : savedAt
        ? `saved ${savedAt.replace(/^.*T/, "").replace(/\..*$/, "").replace(/[+-]\d\d:?\d\d$|Z$/, "")}`
        : "";
    this.savedText.classList.toggle("deg-lab-dirty", dirty);
    this.v.root.dataset.dirty = String(dirty);
    this.undoBtn.disabled = !m.get("can_undo");
    this.redoBtn.disabled = !m.get("can_redo");
    this.statusText.textContent = m.get("status") || "";
    const err = m.get("error") || "";
    this.errorBox.textContent = err;
    this.errorBox.style.display = err ? "" : "none";
    this.conflictBox.style.display = m.get("lock_conflict") ? "" : "none";
  }

  /** A status line of the front end's own (until Python sends the next one). */
  say(/** @type {string} */ text) {
    this.statusText.textContent = text;
  }

  showPlaying(/** @type {boolean} */ playing) {
    this.playBtn.textContent = playing ? "⏸" : "▶";
    this.v.root.dataset.playing = String(playing);
  }

  showRecording(/** @type {Recording | null} */ r) {
    const names = this.v.model.get("behaviors") || [];
    if (!r) {
      this.recText.textContent = "";
      this.v.root.dataset.recording = "";
      return;
    }
    const what = r.behavior < 0 ? "erase" : `${names[r.behavior]} ${r.value === 1 ? "present" : "absent"}`;
    this.recText.textContent = `● REC ${what} from ${r.anchor}`;
    this.recText.style.color = r.behavior < 0 ? "#555" : PALETTE[r.behavior % PALETTE.length];
    this.v.root.dataset.recording = String(r.behavior);
  }
}

// ==================================================================== frame view

/**
 * The frame canvas: the playhead's frame (or the nearest cached one meanwhile), zoom and pan.
 * On a video of several animals with tracks it outlines every animal's box and, in follow mode
 * (the `follow` trait), centres and zooms on the selected animal; the user's own zoom or pan
 * ends follow mode.
 */
class FrameView {
  constructor(/** @type {LabelerView} */ v) {
    this.v = v;
    this.canvas = h("canvas", { class: "deg-lab-frame" });
    // zoom / pan in device px
    this.zoom = 1;
    this.panX = 0;
    this.panY = 0;
    /** @type {{x: number, y: number, panX: number, panY: number, moved: boolean} | null} a pan drag */
    this.pan = null;
    this.painted = -1; // the frame on the canvas (-1: none)
    this.follow = false; // the `follow` trait, as last read
    /**
     * Where the image lies at zoom 1 (device px), as last drawn.
     * @type {{ox: number, oy: number, dw: number, dh: number} | null}
     */
    this.image = null;
    this.bind();
  }

  resetZoom() {
    this.zoom = 1;
    this.panX = this.panY = 0;
  }

  /** Whether follow mode moves the view: on, several animals, and tracks to follow. */
  following() {
    const d = this.v.data;
    return this.follow && d.nAnimals > 1 && d.tracks.length > 0;
  }

  /** The user zooms or pans: follow mode ends, the view stays where it was. */
  takeOver() {
    if (!this.following()) return;
    this.follow = false; // before the trait, so that its handler keeps the view
    this.v.setFollow(false);
  }

  /**
   * The source frame's size (`frame_width` x `frame_height`) and the device px per source px
   * of the image drawn dw x dh at zoom 1.
   */
  scale(/** @type {number} */ dw, /** @type {number} */ dh) {
    const m = this.v.model;
    const fw = m.get("frame_width") || 0;
    const fh = m.get("frame_height") || 0;
    return { fw: fw || dw, fh: fh || dh, sx: fw ? dw / fw : 1, sy: fh ? dh / fh : 1 };
  }

  /**
   * Follow mode: centre on the selected animal's box at frame f and zoom so that a square of
   * side max(3 * max(w, h), min(frame_w, frame_h) / 3) source px fills the view (zoom >= 1;
   * the view stays on the image). Where the animal is not known the view stays as it was.
   * @param {number} f @param {number} W @param {number} H canvas device px
   * @param {{ox: number, oy: number, dw: number, dh: number}} img
   */
  followAnimal(f, W, H, img) {
    const d = this.v.data;
    const b = d.box(f, d.animal);
    if (!b) return;
    const { fw, fh, sx, sy } = this.scale(img.dw, img.dh);
    const side = Math.max(3 * Math.max(b[2], b[3]), Math.min(fw, fh) / 3);
    const z = Math.min(MAX_ZOOM, Math.max(1, Math.min(W, H) / (side * Math.min(sx, sy))));
    /** The pan that puts canvas point c (at zoom 1) in the middle, kept on the image. */
    /** @param {number} c @param {number} o image start @param {number} len its length @param {number} V view */
    const pan = (c, o, len, V) => {
      if (z * len <= V) return V / 2 - z * (o + len / 2); // the image is narrower: centred
      return Math.min(-z * o, Math.max(V - z * (o + len), V / 2 - z * c));
    };
    this.zoom = z;
    this.panX = pan(img.ox + (b[0] + 0.5) * sx, img.ox, img.dw, W);
    this.panY = pan(img.oy + (b[1] + 0.5) * sy, img.oy, img.dh, H);
  }

  /**
   * Every animal's box at frame f (thin, in its colour), the selected one last, thicker and
   * named; publishes `data-outline` (the selected box, source px: centre x, y, w, h, rounded)
   * and `data-outline-view` (it as drawn: left, top, width, height in CSS px on the canvas).
   * @param {CanvasRenderingContext2D} ctx @param {number} f
   * @param {{ox: number, oy: number, dw: number, dh: number}} img
   */
  drawOutlines(ctx, f, img) {
    const v = this.v;
    const d = v.data;
    const dpr = v.dpr;
    const { sx, sy } = this.scale(img.dw, img.dh);
    const z = this.zoom;
    // source px (pixel centres at integers) -> canvas device px under the zoom and pan
    const X = (/** @type {number} */ x) => z * (img.ox + (x + 0.5) * sx) + this.panX;
    const Y = (/** @type {number} */ y) => z * (img.oy + (y + 0.5) * sy) + this.panY;
    let outline = "";
    let drawn = "";
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.lineJoin = "round";
    const order = [...Array(d.nAnimals).keys()].filter((a) => a !== d.animal);
    order.push(d.animal);
    for (const a of order) {
      const b = d.box(f, a);
      if (!b) continue;
      const sel = a === d.animal;
      const x0 = X(b[0] - b[2] / 2);
      const y0 = Y(b[1] - b[3] / 2);
      const w = X(b[0] + b[2] / 2) - x0;
      const hh = Y(b[1] + b[3] / 2) - y0;
      const lw = (sel ? 3 : 1.5) * dpr;
      ctx.strokeStyle = "rgba(0,0,0,0.55)"; // a dark halo: the colours read on light floors too
      ctx.lineWidth = lw + 2 * dpr;
      ctx.strokeRect(x0, y0, w, hh);
      ctx.strokeStyle = animalColour(a);
      ctx.lineWidth = lw;
      ctx.strokeRect(x0, y0, w, hh);
      if (!sel) continue;
      outline = b.map((x) => Math.round(x)).join(",");
      drawn = [x0, y0, w, hh].map((x) => Math.round((x / dpr) * 10) / 10).join(",");
      const name = v.animalName(a);
      ctx.font = `bold ${12 * dpr}px sans-serif`;
      ctx.textBaseline = "bottom";
      const tw = ctx.measureText(name).width + 8 * dpr;
      const th = 16 * dpr;
      const ty = y0 - lw / 2 >= th ? y0 - lw / 2 : y0 + hh + lw / 2 + th; // above, else below
      ctx.fillStyle = "rgba(0,0,0,0.65)";
      ctx.fillRect(x0 - lw / 2, ty - th, tw, th);
      ctx.fillStyle = animalColour(a);
      ctx.fillText(name, x0 - lw / 2 + 4 * dpr, ty - 2 * dpr);
    }
    v.root.dataset.outline = outline;
    v.root.dataset.outlineView = drawn;
  }

  draw() {
    const v = this.v;
    const c = this.canvas;
    const ctx = ctx2d(c);
    const W = c.width;
    const H = c.height;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#111";
    ctx.fillRect(0, 0, W, H);
    const idx = v.cache.nearest(v.frame);
    const multi = v.data.nAnimals > 1;
    if (idx < 0) {
      this.painted = -1;
      v.root.dataset.paintedFrame = "-1";
      if (multi) v.root.dataset.outline = v.root.dataset.outlineView = "";
      return;
    }
    const bmp = /** @type {ImageBitmap} */ (v.cache.get(idx));
    const s = Math.min(W / bmp.width, H / bmp.height);
    const dw = bmp.width * s;
    const dh = bmp.height * s;
    const img = { ox: (W - dw) / 2, oy: (H - dh) / 2, dw, dh };
    this.image = img;
    if (this.following()) this.followAnimal(idx, W, H, img);
    ctx.setTransform(this.zoom, 0, 0, this.zoom, this.panX, this.panY);
    ctx.imageSmoothingEnabled = this.zoom < 4; // show the pixels once the user zooms far in
    ctx.drawImage(bmp, img.ox, img.oy, dw, dh);
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    if (multi) {
      this.drawOutlines(ctx, idx, img);
      v.root.dataset.viewZoom = String(Math.round(this.zoom * 1000) / 1000);
    }
    if (idx !== v.frame) {
      const d = v.dpr;
      ctx.fillStyle = "rgba(0,0,0,0.6)";
      ctx.fillRect(0, 0, 150 * d, 20 * d);
      ctx.fillStyle = "#fff";
      ctx.font = `${12 * d}px sans-serif`;
      ctx.fillText(`loading frame ${v.frame}…`, 6 * d, 14 * d);
    }
    this.painted = idx;
    v.root.dataset.paintedFrame = String(idx);
    if (idx === v.frame) v.timing.painted(v.frame);
  }

  bind() {
    const v = this.v;
    const c = this.canvas;
    c.addEventListener(
      "wheel",
      (e) => {
        e.preventDefault();
        const r = c.getBoundingClientRect();
        const px = (e.clientX - r.left) * v.dpr;
        const py = (e.clientY - r.top) * v.dpr;
        this.takeOver();
        const z = Math.min(MAX_ZOOM, Math.max(1, this.zoom * Math.exp(-e.deltaY * 0.0015)));
        if (z === 1) {
          this.resetZoom();
        } else {
          // keep the image point under the cursor where it is
          this.panX = px - ((px - this.panX) * z) / this.zoom;
          this.panY = py - ((py - this.panY) * z) / this.zoom;
          this.zoom = z;
        }
        v.schedule("frame");
      },
      { passive: false },
    );
    c.addEventListener("pointerdown", (e) => {
      if (e.button !== 0) return;
      c.setPointerCapture(e.pointerId);
      this.pan = { x: e.clientX, y: e.clientY, panX: this.panX, panY: this.panY, moved: false };
    });
    c.addEventListener("pointermove", (e) => {
      const fp = this.pan;
      if (!fp) return;
      if (Math.hypot(e.clientX - fp.x, e.clientY - fp.y) > 3) fp.moved = true;
      // (the 3 px tell a click, which picks an animal, from a pan: only with several animals)
      if (this.zoom === 1 || (!fp.moved && v.data.nAnimals > 1)) return;
      this.takeOver();
      this.panX = fp.panX + (e.clientX - fp.x) * v.dpr;
      this.panY = fp.panY + (e.clientY - fp.y) * v.dpr;
      v.schedule("frame");
    });
    c.addEventListener("pointerup", (e) => {
      const fp = this.pan;
      this.pan = null;
      if (fp && !fp.moved) this.pick(e); // a click: select the animal under it
    });
    c.addEventListener("pointercancel", () => {
      this.pan = null;
    });
    c.addEventListener("dblclick", () => {
      this.takeOver();
      this.resetZoom();
      v.schedule("frame");
    });
  }

  /** A click on the frame: select the animal whose box (at the painted frame) is under it. */
  pick(/** @type {MouseEvent} */ e) {
    const v = this.v;
    const d = v.data;
    const img = this.image;
    if (d.nAnimals <= 1 || !img || this.painted < 0) return;
    const r = this.canvas.getBoundingClientRect();
    const { sx, sy } = this.scale(img.dw, img.dh);
    // the click in source px
    const x = (((e.clientX - r.left) * v.dpr - this.panX) / this.zoom - img.ox) / sx - 0.5;
    const y = (((e.clientY - r.top) * v.dpr - this.panY) / this.zoom - img.oy) / sy - 0.5;
    let best = -1;
    let area = Infinity;
    for (let a = 0; a < d.nAnimals; a++) {
      const b = d.box(this.painted, a);
      if (!b || Math.abs(x - b[0]) > b[2] / 2 || Math.abs(y - b[1]) > b[3] / 2) continue;
      if (b[2] * b[3] < area) {
        best = a;
        area = b[2] * b[3];
      }
    }
    if (best >= 0 && best !== d.animal) v.selectAnimal(best);
  }
}

// ==================================================================== timeline

/**
 * The ethogram: a time ruler, K label rows and (with predictions) K probability and K
 * prediction rows, over a view of [viewStart, viewStart + viewSpan) frames. The rows are drawn
 * on an offscreen `base` canvas only when data or the view change; each paint blits it and
 * adds the playhead and any drag preview. A video of several animals has one block of K label
 * rows per animal, each under a heading row with the animal's name; the probability,
 * prediction and reference rows, after every block, are the selected animal's.
 */
class Timeline {
  constructor(/** @type {LabelerView} */ v) {
    this.v = v;
    this.canvas = h("canvas", { class: "deg-lab-timeline" });
    this.base = document.createElement("canvas"); // rows without the playhead
    // the view, in frames
    this.viewStart = 0;
    this.viewSpan = 1;
    /**
     * A drag: "pan" (ruler), "paint" (label row) or "seek" (other rows).
     * @type {{mode: string, k: number, anchor: number, cur: number, value: number,
     *   x0: number, y0: number, start0: number, moved: boolean} | null}
     */
    this.drag = null;
    /** @type {CanvasPattern | null} */
    this.hatchPattern = null;
    this.bind();
  }

  // ------------------------------------------------------------------ geometry

  /**
   * Rows: ruler, K label rows, then (with predictions) K probability rows and K prediction
   * rows, then (with a reference annotator) K reference rows. Several animals: one block per
   * animal (a heading row, then its K label rows; `blocks` their tops, `labelY` the selected
   * one's label rows), and a heading row (`ownY`) above the selected animal's other rows.
   */
  rows() {
    const d = this.v.data;
    const K = d.K;
    const multi = d.nAnimals > 1;
    const head = multi ? ANIMAL_H : 0;
    const top = RULER_H + 2;
    const blockH = head + K * LABEL_H;
    /** @type {number[]} */
    const blocks = [];
    for (let a = 0; a < (multi ? d.nAnimals : 1); a++) blocks.push(top + a * (blockH + BLOCK_GAP));
    const labelY = blocks[multi ? Math.min(d.animal, blocks.length - 1) : 0] + head;
    const labelsEnd = blocks[blocks.length - 1] + blockH;
    const pred = d.hasPred && d.probs.length > 0;
    const ref = d.reference.length > 0;
    let y = labelsEnd;
    let ownY = -1;
    if (multi && (pred || ref)) {
      ownY = y + GAP;
      y = ownY + ANIMAL_H - GAP; // the rows below add their own GAP
    }
    const probY = y + GAP;
    const predY = probY + K * PROB_H + GAP;
    if (pred) y = predY + K * PRED_H;
    const refY = y + GAP;
    if (ref) y = refY + K * REF_H;
    const height = y + 4;
    return { top, labelY, probY, predY, pred, refY, ref, height, multi, head, blocks, ownY };
  }

  /** The plot area: x and width (CSS px) right of the names' gutter. */
  plot() {
    const w = this.canvas.width / this.v.dpr;
    return { x: GUTTER, w: Math.max(10, w - GUTTER - RIGHT_PAD) };
  }

  /** Both canvases `width` CSS px wide and as tall as the rows. */
  size(/** @type {number} */ width) {
    const hgt = this.rows().height;
    sizeCanvas(this.canvas, width, hgt, this.v.dpr);
    sizeCanvas(this.base, width, hgt, this.v.dpr);
    this.clampView();
  }

  minSpan() {
    return Math.min(this.v.data.n, Math.max(4, Math.round(this.plot().w / 40)));
  }

  resetView() {
    this.viewStart = 0;
    this.viewSpan = Math.max(1, this.v.data.n);
  }

  clampView() {
    const n = Math.max(1, this.v.data.n);
    this.viewSpan = Math.min(n, Math.max(this.minSpan() || 1, this.viewSpan));
    this.viewStart = Math.min(Math.max(0, this.viewStart), n - this.viewSpan);
    this.publishGeometry();
  }

  /** @param {number} start @param {number} span */
  setView(start, span) {
    this.viewStart = start;
    this.viewSpan = span;
    this.clampView();
    this.v.schedule("base");
  }

  /** Zoom by `factor` (< 1 zooms in) keeping frame position `at` fixed on screen. */
  zoom(/** @type {number} */ factor, /** @type {number} */ at) {
    const span = Math.min(this.v.data.n, Math.max(this.minSpan(), this.viewSpan * factor));
    const start = at - ((at - this.viewStart) * span) / this.viewSpan;
    this.setView(start, span);
  }

  /** Keep frame `f` (the playhead) inside the view. */
  follow(/** @type {number} */ f) {
    if (f < this.viewStart || f + 1 > this.viewStart + this.viewSpan) {
      this.setView(f + 0.5 - this.viewSpan / 2, this.viewSpan);
    }
  }

  frameToX(/** @type {number} */ f) {
    const p = this.plot();
    return p.x + ((f - this.viewStart) / this.viewSpan) * p.w;
  }

  xToFrame(/** @type {number} */ x) {
    const p = this.plot();
    const f = Math.floor(this.viewStart + ((x - p.x) / p.w) * this.viewSpan);
    return Math.min(Math.max(0, f), this.v.data.n - 1);
  }

  /**
   * Which row is at y (CSS px): ruler, label k, prob k, pred k, ref k, none, or (several
   * animals) "other": another animal's block (`animal`), "head": the selected one's heading.
   * @returns {{kind: string, k: number, animal?: number}}
   */
  hitRow(/** @type {number} */ y) {
    const R = this.rows();
    const d = this.v.data;
    const K = d.K;
    if (y < RULER_H) return { kind: "ruler", k: -1 };
    if (R.multi) {
      for (let a = 0; a < R.blocks.length; a++) {
        const t = R.blocks[a];
        if (y < t || y >= t + R.head + K * LABEL_H) continue;
        if (a !== d.animal) return { kind: "other", k: -1, animal: a };
        if (y < t + R.head) return { kind: "head", k: -1, animal: a };
      }
    }
    const inRows = (/** @type {number} */ top, /** @type {number} */ hgt) => {
      const k = Math.floor((y - top) / hgt);
      return y >= top && k < K ? k : -1;
    };
    let k = inRows(R.labelY, LABEL_H);
    if (k >= 0) return { kind: "label", k };
    if (R.pred) {
      k = inRows(R.probY, PROB_H);
      if (k >= 0) return { kind: "prob", k };
      k = inRows(R.predY, PRED_H);
      if (k >= 0) return { kind: "pred", k };
    }
    if (R.ref) {
      k = inRows(R.refY, REF_H);
      if (k >= 0) return { kind: "ref", k };
    }
    return { kind: "none", k: -1 };
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
    const ds = this.canvas.dataset;
    ds.viewStart = String(this.viewStart);
    ds.viewSpan = String(this.viewSpan);
    ds.plotX = String(p.x);
    ds.plotW = String(p.w);
    ds.labelY = String(R.labelY);
    ds.labelRowH = String(LABEL_H);
    ds.probY = R.pred ? String(R.probY) : "";
    ds.predY = R.pred ? String(R.predY) : "";
    ds.refY = R.ref ? String(R.refY) : "";
    ds.nBehaviors = String(this.v.data.K);
    // several animals: each animal's block top (its heading row, `animalHeadH` high; its label
    // rows below); `labelY` above is the selected animal's
    ds.animalY = R.multi ? R.blocks.join(",") : "";
    ds.animalHeadH = String(R.head);
  }

  // ------------------------------------------------------------------ drawing

  /** The hatch used for unlabelled frames. */
  hatch(/** @type {CanvasRenderingContext2D} */ ctx) {
    if (!this.hatchPattern) {
      const t = document.createElement("canvas");
      t.width = t.height = 6;
      const g = ctx2d(t);
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
    const n = this.v.data.n;
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
      const f1 = Math.min(n, Math.ceil(this.viewStart + this.viewSpan));
      for (let f = f0; f < f1; f++) {
        const x0 = Math.max(p.x, this.frameToX(f));
        const x1 = Math.min(p.x + p.w, this.frameToX(f + 1));
        if (x1 > x0) push(x0, x1, stateOf(f, f + 1));
      }
    } else {
      const cols = Math.ceil(p.w);
      for (let c = 0; c < cols; c++) {
        const f0 = Math.floor(this.viewStart + c * fpp);
        const f1 = Math.min(n, Math.max(f0 + 1, Math.floor(this.viewStart + (c + 1) * fpp)));
        if (f0 >= n) break;
        push(p.x + c, Math.min(p.x + p.w, p.x + c + 1), stateOf(f0, f1));
      }
    }
    return out;
  }

  /** Redraw the rows (data or the view changed). */
  drawBase() {
    const t0 = performance.now();
    this.renderBase();
    this.v.timing.baseDrawn(t0, this.v.data.n, this.v.data.K);
  }

  renderBase() {
    const v = this.v;
    const c = this.base;
    const ctx = ctx2d(c);
    const d = v.dpr;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, c.width, c.height);
    ctx.setTransform(d, 0, 0, d, 0, 0);
    const W = c.width / d;
    const p = this.plot();
    const R = this.rows();
    const K = v.data.K;
    const names = v.model.get("behaviors") || [];
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, W, R.height);
    this.drawRuler(ctx, p);
    ctx.font = "12px sans-serif";
    ctx.textBaseline = "middle";
    if (R.multi) {
      const d = v.data;
      for (let a = 0; a < R.blocks.length; a++) {
        const sel = a === d.animal;
        this.drawAnimalHead(ctx, R.blocks[a], a, v.animalName(a), sel, W);
        if (!sel) ctx.globalAlpha = 0.6; // another animal's rows: a click selects it
        this.drawLabelRows(ctx, R.blocks[a] + R.head, d.labelsOf(a), names, sel);
        ctx.globalAlpha = 1;
      }
      if (R.ownY >= 0) {
        const who = v.model.get("reference") || "";
        const what = [R.pred ? "model" : "", R.ref ? who || "reference" : ""].filter(Boolean);
        const text = `${v.animalName(d.animal)}: ${what.join(", ")}`;
        this.drawAnimalHead(ctx, R.ownY, d.animal, text, false, W);
      }
    } else {
      this.drawLabelRows(ctx, R.labelY, v.data.labels, names, true);
    }
    ctx.textBaseline = "middle";
    if (R.pred) {
      const P = v.data.probs;
      const Q = v.data.predicted;
      ctx.font = "9px sans-serif";
      for (let k = 0; k < K; k++) {
        const colour = PALETTE[k % PALETTE.length];
        const y = R.probY + k * PROB_H;
        ctx.fillStyle = "#555";
        ctx.fillText(fit(ctx, `P ${names[k] ?? k}`, GUTTER - 20), 18, y + PROB_H / 2);
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
        ctx.fillText(fit(ctx, `pred ${names[k] ?? k}`, GUTTER - 20), 18, y + PRED_H / 2);
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
    if (R.ref) this.drawReference(ctx, R.refY, names);
    // frame boundaries once frames are wide enough to tell apart
    const ppf = p.w / this.viewSpan;
    if (ppf >= 8) {
      ctx.fillStyle = "rgba(255,255,255,0.7)";
      for (let f = Math.ceil(this.viewStart); f < this.viewStart + this.viewSpan; f++) {
        ctx.fillRect(Math.round(this.frameToX(f)), R.top, 1, R.height - R.top - 4);
      }
    }
    this.publishGeometry();
  }

  /**
   * K label rows from y `top`: gutter (key number and name, the selected behaviour bold when
   * `own`: the rows the keys edit), then present / absent / unlabelled runs of `L` ((n, K)).
   * @param {CanvasRenderingContext2D} ctx @param {number} top @param {Int8Array} L
   * @param {string[]} names @param {boolean} own
   */
  drawLabelRows(ctx, top, L, names, own) {
    const v = this.v;
    const K = v.data.K;
    for (let k = 0; k < K; k++) {
      const y = top + k * LABEL_H;
      const colour = PALETTE[k % PALETTE.length];
      // gutter: key number and name; the selected behaviour is bold
      ctx.fillStyle = colour;
      ctx.fillRect(4, y + 3, 10, LABEL_H - 6);
      ctx.fillStyle = "#222";
      ctx.font = `${own && v.selected === k ? "bold " : ""}12px sans-serif`;
      const label = `${k < 9 ? `${k + 1} ` : ""}${names[k] ?? k}`;
      ctx.fillText(fit(ctx, label, GUTTER - 24), 18, y + LABEL_H / 2);
      const runs = this.runs((f0, f1) => {
        let unl = false;
        for (let f = f0; f < f1; f++) {
          const x = L[f * K + k];
          if (x === 1) return 2;
          if (x === -1) unl = true;
        }
        return unl ? 1 : 0; // present wins (short bouts stay visible), then unlabelled
      });
      for (let i = 0; i < runs.length; i += 3) {
        const s = runs[i + 2];
        ctx.fillStyle = s === 2 ? colour : s === 1 ? this.hatch(ctx) : ABSENT;
        ctx.fillRect(runs[i], y, runs[i + 1] - runs[i], LABEL_H - 2);
      }
    }
  }

  /**
   * A heading row at y `top` (several animals): animal a's colour and `text` in the gutter; the
   * selected animal's block heading is highlighted across the width.
   * @param {CanvasRenderingContext2D} ctx @param {number} top @param {number} a
   * @param {string} text @param {boolean} selected @param {number} W canvas width, CSS px
   */
  drawAnimalHead(ctx, top, a, text, selected, W) {
    const y = top + (ANIMAL_H - 2) / 2;
    if (selected) {
      ctx.fillStyle = "#dde9fb";
      ctx.fillRect(0, top, W, ANIMAL_H - 2);
    }
    ctx.fillStyle = animalColour(a);
    ctx.fillRect(4, top + 2, 10, ANIMAL_H - 6);
    ctx.strokeStyle = "#333";
    ctx.lineWidth = 1;
    ctx.strokeRect(4.5, top + 2.5, 9, ANIMAL_H - 7);
    ctx.fillStyle = selected ? "#0b3d91" : "#555";
    ctx.font = `${selected ? "bold " : ""}11px sans-serif`;
    ctx.textBaseline = "middle";
    ctx.fillText(fit(ctx, selected ? `▸ ${text}` : text, GUTTER - 24), 18, y);
  }

  /**
   * The reference annotator's rows (read-only): present in the behaviour's colour, absent
   * grey, unlabelled hatched; frames where the two annotators differ get a red tick above.
   * @param {CanvasRenderingContext2D} ctx @param {number} top @param {string[]} names
   */
  drawReference(ctx, top, names) {
    const v = this.v;
    const K = v.data.K;
    const Rf = v.data.reference;
    const L = v.data.labels;
    const who = v.model.get("reference") || "ref";
    ctx.font = "9px sans-serif";
    for (let k = 0; k < K; k++) {
      const colour = PALETTE[k % PALETTE.length];
      const y = top + k * REF_H;
      ctx.fillStyle = "#555";
      ctx.fillText(fit(ctx, `${who} ${names[k] ?? k}`, GUTTER - 20), 18, y + REF_H / 2);
      // a run's state: 0 absent, 1 unlabelled, 2 present (present wins, as on label rows),
      // + 3 where the annotators differ somewhere in it
      const runs = this.runs((f0, f1) => {
        let base = 0;
        let differ = 0;
        for (let f = f0; f < f1; f++) {
          const x = Rf[f * K + k];
          const mine = L[f * K + k];
          if (x === 1) base = 2;
          else if (x === -1 && base === 0) base = 1;
          if (x !== -1 && mine !== -1 && x !== mine) differ = 3;
        }
        return base + differ;
      });
      for (let i = 0; i < runs.length; i += 3) {
        const base = runs[i + 2] % 3;
        ctx.fillStyle = base === 2 ? colour : base === 1 ? this.hatch(ctx) : ABSENT;
        ctx.fillRect(runs[i], y, runs[i + 1] - runs[i], REF_H - 1);
        if (runs[i + 2] >= 3) {
          ctx.fillStyle = DISAGREE;
          ctx.fillRect(runs[i], y, runs[i + 1] - runs[i], 2);
        }
      }
    }
  }

  /** Time ruler with ticks at a readable spacing (frames below a second, clock time above). */
  drawRuler(/** @type {CanvasRenderingContext2D} */ ctx, /** @type {{x: number, w: number}} */ p) {
    ctx.fillStyle = "#f4f4f4";
    ctx.fillRect(p.x, 0, p.w, RULER_H);
    const fps = this.v.fps || 30;
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
    // swap candidates (several animals): a small triangle down from the ruler's foot
    const swaps = this.v.data.nAnimals > 1 ? this.v.data.swaps : [];
    if (swaps.length) {
      ctx.fillStyle = SWAP;
      ctx.beginPath();
      for (const f of swaps) {
        if (f < this.viewStart || f >= this.viewStart + this.viewSpan) continue;
        const x = this.frameToX(f + 0.5);
        ctx.moveTo(x - 4, RULER_H - 7);
        ctx.lineTo(x + 4, RULER_H - 7);
        ctx.lineTo(x, RULER_H);
        ctx.closePath();
      }
      ctx.fill();
    }
  }

  /** Blit the rows, then the playhead and any drag preview. */
  draw() {
    const v = this.v;
    const c = this.canvas;
    const ctx = ctx2d(c);
    const d = v.dpr;
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
    const f = v.frame;
    if (v.data.n > 0 && f >= this.viewStart && f < this.viewStart + this.viewSpan) {
      const x0 = this.frameToX(f);
      const x1 = this.frameToX(f + 1);
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

  // ------------------------------------------------------------------ pointer

  bind() {
    const v = this.v;
    const c = this.canvas;
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
          this.zoom(Math.exp(e.deltaY * 0.002), at);
        }
      },
      { passive: false },
    );
    c.addEventListener("pointerdown", (e) => {
      const { x, y } = local(e);
      const p = this.plot();
      const hit = this.hitRow(y);
      v.root.focus({ preventScroll: true });
      e.preventDefault();
      if (hit.kind === "other" && hit.animal !== undefined) {
        v.selectAnimal(hit.animal); // no edit: the rows under the pointer were another animal's
        return;
      }
      if (x < p.x) {
        if (hit.kind === "label") {
          v.selected = v.selected === hit.k ? null : hit.k;
          v.schedule("base");
        }
        return;
      }
      if (v.data.n <= 0) return;
      c.setPointerCapture(e.pointerId);
      const f = this.xToFrame(x);
      const base = {
        k: hit.k, anchor: f, cur: f, value: 1,
        x0: x, y0: y, start0: this.viewStart, moved: false,
      };
      if (e.button === 1 || hit.kind === "ruler") {
        this.drag = { ...base, mode: "pan" };
      } else if (hit.kind === "label") {
        const value = e.button === 2 || v.eHeld ? -1 : e.altKey ? 0 : 1;
        if (e.shiftKey) {
          const a = Math.min(v.frame, f);
          const b = Math.max(v.frame, f) + 1;
          v.recorder.stop();
          v.recorder.edit(hit.k, a, b, value);
        } else if (e.ctrlKey || e.metaKey) {
          v.recorder.stop();
          v.recorder.toggleFrame(hit.k, f);
        } else {
          this.drag = { ...base, mode: "paint", value };
        }
      } else {
        this.drag = { ...base, mode: "seek" };
        v.timing.mark(e, "click");
        v.seek(f);
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
        v.schedule("timeline");
      } else if (dr.mode === "seek") {
        v.seek(this.xToFrame(x));
      }
    });
    const up = (/** @type {PointerEvent} */ e) => {
      const dr = this.drag;
      this.drag = null;
      if (!dr) return;
      if (dr.mode === "pan" && !dr.moved) {
        v.timing.mark(e, "click");
        v.seek(dr.anchor);
      } else if (dr.mode === "paint") {
        if (dr.moved) {
          const a = Math.min(dr.anchor, dr.cur);
          const b = Math.max(dr.anchor, dr.cur) + 1;
          v.recorder.stop();
          v.recorder.edit(dr.k, a, b, dr.value, v.recorder.newGroup());
        } else {
          v.timing.mark(e, "click");
          v.seek(dr.anchor); // a plain click seeks
        }
      }
      v.schedule("timeline");
    };
    c.addEventListener("pointerup", up);
    c.addEventListener("pointercancel", () => {
      this.drag = null;
      v.schedule("timeline");
    });
  }
}

/** Truncate `s` to `w` px. */
function fit(/** @type {CanvasRenderingContext2D} */ ctx, /** @type {string} */ s, /** @type {number} */ w) {
  if (ctx.measureText(s).width <= w) return s;
  while (s.length > 1 && ctx.measureText(`${s}…`).width > w) s = s.slice(0, -1);
  return `${s}…`;
}

// ==================================================================== timing

/**
 * Keypress-to-paint samples, only with `debug_timing`: pushed to `window.__degLabelerTimings`
 * (and the rows' redraw times to `window.__degLabelerDrawTimings`) for benchmarks to read.
 */
class Timing {
  constructor(/** @type {Model} */ model) {
    this.model = model;
    /** @type {PendingTiming | null} */
    this.sample = null;
  }

  /** Start a sample at this input. @param {Event} e @param {string} kind */
  mark(e, kind) {
    if (!this.model.get("debug_timing")) return;
    this.sample = { kind, frame: -1, t0: e.timeStamp || performance.now(), cached: false };
  }

  /** The input moved the playhead to `frame` (the first move after `mark` counts). */
  chose(/** @type {number} */ frame, /** @type {boolean} */ cached) {
    if (this.sample && this.sample.frame < 0) {
      this.sample.frame = frame;
      this.sample.cached = cached;
    }
  }

  replied(/** @type {number} */ frame) {
    if (this.sample && this.sample.frame === frame) this.sample.replyAt = performance.now();
  }

  decoded(/** @type {number} */ frame) {
    if (this.sample && this.sample.frame === frame) this.sample.decodedAt = performance.now();
  }

  /** The playhead's frame was painted: close the sample. */
  painted(/** @type {number} */ frame) {
    const t = this.sample;
    if (!t || t.frame !== frame) return;
    this.sample = null;
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

  /** The timeline's rows (n frames, K behaviours) were redrawn, starting at `t0`. */
  baseDrawn(/** @type {number} */ t0, /** @type {number} */ n, /** @type {number} */ K) {
    if (!this.model.get("debug_timing")) return;
    const w = /** @type {any} */ (window);
    w.__degLabelerDrawTimings = w.__degLabelerDrawTimings || [];
    w.__degLabelerDrawTimings.push({ ms: performance.now() - t0, frames: n, behaviors: K });
  }
}

// ==================================================================== the view

/**
 * One view of a Labeler: owns the playhead and the paint loop, reads the model and routes
 * events to the parts.
 */
class LabelerView {
  /** @param {Model} model @param {HTMLElement} el */
  constructor(model, el) {
    this.model = model;
    const palette = model.get("palette");
    if (palette && palette.length) PALETTE = palette;
    this.el = el;
    this.frame = 0; // the playhead
    this.fps = 30;
    /** @type {string | null} video requested by the picker, not yet loaded by Python */
    this.switchingTo = null;
    /** @type {number | null} selected behaviour (for n / p) */
    this.selected = null;
    this.eHeld = false;
    this.lastSync = 0; // when `frame` last went to Python
    this.drawRaf = 0;
    this.needFrame = true;
    this.needTimeline = true;
    this.needBase = true;
    this.dpr = window.devicePixelRatio || 1;
    /** @type {[string, (...a: any[]) => void][]} */
    this.handlers = [];
    /** the Bytes traits `readAnimals` last copied, and for which (animals, frames, behaviours) */
    /** @type {{animalLabels: unknown, tracks: unknown, shape: string}} */
    this.seen = { animalLabels: null, tracks: null, shape: "" };

    this.data = new Labels();
    this.timing = new Timing(model);
    this.cache = new FrameCache(CACHE_SIZE);
    this.loader = new FrameLoader(
      model,
      this.cache,
      (i) => {
        this.timing.decoded(i);
        if (i === this.frame) this.ensureFrames(); // now the neighbours
        if (i === this.frame || this.frameView.painted !== this.frame) this.schedule("frame");
      },
      () => this.ensureFrames(),
      (i) => this.timing.replied(i),
    );
    this.root = h("div", {
      class: "deg-lab",
      tabIndex: 0,
      "data-lm-suppress-shortcuts": "true", // JupyterLab's command-mode keys stay out
    });
    this.recorder = new Recorder(this);
    this.player = new Player(this);
    this.controls = new Controls(this);
    this.frameView = new FrameView(this);
    this.timeline = new Timeline(this);
    this.help = helpOverlay();
    this.build();
    this.bindModel();
    this.readAll();
    this.timeline.resetView();
    this.layout();
  }

  // ------------------------------------------------------------------ DOM
  build() {
    const c = this.controls;
    this.help.addEventListener("click", () => this.toggleHelp(false));
    const stage = h("div", { class: "deg-lab-stage" }, [this.frameView.canvas, this.help]);
    this.root.append(
      c.toolbar,
      stage,
      c.scrub,
      this.timeline.canvas,
      c.errorBox,
      c.conflictBox,
      c.statusBar,
    );
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
    this.resizeObserver = new ResizeObserver(() => this.layout());
    this.resizeObserver.observe(this.root);
  }

  /** @param {KeyboardEvent} e */
  onKeyDown(e) {
    const t = /** @type {HTMLElement} */ (e.target);
    if (t.tagName === "SELECT") return; // let the picker work
    e.stopPropagation(); // JupyterLab must not see keys meant for the labeler
    const binding = findKey(e);
    if (!binding || (binding.animals && this.data.nAnimals <= 1)) return;
    binding.run(this, e);
    e.preventDefault();
  }

  /** Show or hide the "?" overlay (toggle when `show` is not given). @param {boolean} [show] */
  toggleHelp(show) {
    const visible = show ?? this.help.style.display === "none";
    this.help.style.display = visible ? "" : "none";
  }

  // ------------------------------------------------------------------ model
  bindModel() {
    const m = this.model;
    this.handlers = [
      ["msg:custom", (msg, buffers) => {
        if (msg && msg.type === "frames") this.loader.receive(msg, buffers || []);
      }],
      ["change:video", () => {
        this.loader.reset();
        this.recorder.stop();
        this.data.localEdits = [];
        this.frameView.resetZoom();
        this.frameView.painted = -1;
        if (this.switchingTo !== null && m.get("video") === this.switchingTo) {
          // our own switch: until Python sends the new video's state, show nothing stale
          // (and ask for no frames: the old frame index may not exist in the new video)
          this.data.n = 0;
          this.data.labels = new Int8Array(0);
          this.labelsChanged();
          this.showFrame();
          this.schedule("all");
          return;
        }
        this.switchingTo = null;
        this.loadVideo();
      }],
      ["change:videos", () => this.readToolbar()],
      ["change:behaviors", () => { if (!this.settle()) { this.readAll(); this.layout(); } }],
      ["change:exclusive", () => this.readExclusive()],
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
      ["change:reference change:reference_labels change:annotators change:labeler", () => {
        if (this.settle()) return;
        this.readReference();
        this.readToolbar();
        this.layout();
      }],
      ["change:frame", () => {
        if (this.settle() || m.get("playing")) return; // the play loop owns the playhead
        const f = m.get("frame") | 0;
        if (f !== this.frame) this.setFrame(f, false);
      }],
      ["change:playing", () => this.player.read()],
      ["change:speed", () => {
        this.player.restart();
        this.readToolbar();
      }],
      ["change:fps change:frame_width change:frame_height", () => { this.readToolbar(); this.layout(); }],
      [
        "change:n_animals change:animal change:animal_names change:animal_labels change:tracks " +
          "change:swap_frames",
        () => {
          if (this.settle()) return;
          this.readAnimals();
          this.layout();
        },
      ],
      ["change:follow", () => this.readFollow()],
      [
        "change:dirty change:saved_at change:can_undo change:can_redo change:status " +
          "change:error change:lock_conflict",
        () => {
          this.controls.showStatus();
          this.settle();
        },
      ],
    ];
    for (const [ev, cb] of this.handlers) m.on(ev, cb);
  }

  /** The picker chose video `v`: ask Python to switch (it saves the old one first). */
  switchVideo(/** @type {string} */ v) {
    const m = this.model;
    this.root.focus();
    if (v === m.get("video")) return;
    this.recorder.stop();
    if (m.get("playing")) m.set("playing", false);
    this.switchingTo = v; // until Python's state for it arrives (see settle)
    m.set("video", v);
    m.save_changes();
  }

  /** Everything about the current video, from the model. */
  loadVideo() {
    this.readAll();
    this.timeline.resetView();
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
    this.data.n = Math.max(0, m.get("n_frames") | 0);
    this.data.K = (m.get("behaviors") || []).length;
    this.readExclusive();
    this.frame = Math.min(Math.max(0, m.get("frame") | 0), Math.max(0, this.data.n - 1));
    this.readAnimals();
    this.readLabels();
    this.readPredictions();
    this.readReference();
    this.readToolbar();
    this.controls.showStatus();
    this.player.read();
  }

  /**
   * The animals (a video of several): how many, the selected one, every animal's labels, the
   * tracks, the swap candidates and follow mode. When Python selected another animal (a seek),
   * its labels came with it: the recording and the optimistic edits were the old animal's.
   */
  readAnimals() {
    const m = this.model;
    const d = this.data;
    d.nAnimals = Math.max(1, Number(m.get("n_animals")) | 0);
    const a = Math.min(Math.max(0, Number(m.get("animal")) | 0), d.nAnimals - 1);
    // copied only when Python sent new ones: a local `animal` change must keep the old animal's
    // block as switchAnimal left it (with its last edits) until Python's copy comes
    const [labels, tracks] = [m.get("animal_labels"), m.get("tracks")];
    const shape = `${d.nAnimals}:${d.n}:${d.K}`;
    if (labels !== this.seen.animalLabels || shape !== this.seen.shape) d.readAnimalLabels(labels);
    if (tracks !== this.seen.tracks || shape !== this.seen.shape) d.readTracks(tracks);
    this.seen = { animalLabels: labels, tracks, shape };
    d.swaps = d.nAnimals > 1 ? (m.get("swap_frames") || []).filter((f) => Number.isFinite(f)) : [];
    if (a !== d.animal) {
      this.recorder.cancel();
      d.animal = a;
      d.localEdits = [];
      this.readLabels();
    }
    this.readFollow();
    this.needBase = true;
  }

  /** Follow mode (the `follow` trait); turned off, the frame view shows the whole frame again. */
  readFollow() {
    const fv = this.frameView;
    const on = !!this.model.get("follow");
    if (fv.follow && !on) fv.resetZoom();
    fv.follow = on;
    this.root.dataset.follow = String(on);
    this.controls.showAnimals();
    this.schedule("frame");
  }

  /** Animal a's name (`animal_names`, else animal<a>). */
  animalName(/** @type {number} */ a) {
    const names = this.model.get("animal_names") || [];
    return names[a] || `animal${a}`;
  }

  /** Select animal i (picker, keys, a click): shown at once, then Python switches sessions. */
  selectAnimal(/** @type {number} */ i) {
    const d = this.data;
    if (d.nAnimals <= 1 || !(i >= 0 && i < d.nAnimals) || i === d.animal) return;
    this.recorder.stop(); // the old animal's recording goes to its session first
    this.syncFrame();
    d.switchAnimal(i);
    this.model.set("animal", i);
    this.model.save_changes();
    this.labelsChanged();
    this.controls.showAnimals();
    this.schedule("all");
  }

  /** `[` / `]`: the previous / next animal (round the list). */
  stepAnimal(/** @type {number} */ by) {
    const A = this.data.nAnimals;
    this.selectAnimal((((this.data.animal + by) % A) + A) % A);
  }

  /** Set the `follow` trait (the `change:follow` handler shows it). */
  setFollow(/** @type {boolean} */ on) {
    this.model.set("follow", on);
    this.model.save_changes();
  }

  /** `c`: follow mode on / off. */
  toggleFollow() {
    const on = !this.model.get("follow");
    this.setFollow(on);
    if (on && !this.data.tracks.length) this.controls.say(NO_TRACKS);
  }

  /** `s` / `S`: Python moves the playhead to the next / previous swap candidate. */
  seekSwap(/** @type {number} */ direction) {
    this.recorder.stop();
    this.syncFrame();
    this.send({ type: "seek", target: "swap", direction });
  }

  /** `w`: the selected animal and the nearest other one trade tracks from the playhead on
   * (Python rewrites the tracks file; pressing `w` again on the same frame swaps back). */
  swapNearest() {
    const other = this.data.nearestAnimal(this.frame);
    if (other < 0) {
      this.controls.say(NO_TRACKS);
      return;
    }
    this.recorder.stop();
    this.syncFrame();
    this.send({ type: "swap_identities", a: this.data.animal, b: other, frame: this.frame });
  }

  /** Whether local edits keep one behaviour per frame (the `exclusive` trait). */
  readExclusive() {
    this.data.exclusive = !!this.model.get("exclusive");
    this.root.dataset.exclusive = String(this.data.exclusive);
  }

  readLabels() {
    this.data.read(this.model.get("labels"));
    this.labelsChanged();
  }

  readPredictions() {
    const m = this.model;
    this.data.readPredictions(!!m.get("has_predictions"), m.get("probs"), m.get("predicted"));
    this.root.dataset.hasPredictions = String(this.data.hasPred);
    this.needBase = true;
  }

  readReference() {
    this.data.readReference(this.model.get("reference_labels"));
    this.needBase = true;
  }

  readToolbar() {
    this.controls.showVideos();
    this.fps = Number(this.model.get("fps")) || 30;
    this.showFrame();
  }

  /** Labels changed here: refresh what depends on them. */
  labelsChanged() {
    this.root.dataset.labeledCount = String(this.data.labeledCount());
    this.root.dataset.labelsHash = fnv1a(this.data.labels);
    this.needBase = true;
  }

  /** @param {object} content */
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
    if (this.data.n <= 0) return;
    f = Math.min(Math.max(0, Math.round(f)), this.data.n - 1);
    this.frame = f;
    this.timing.chose(f, this.cache.has(f));
    if (user && this.recorder.rec) this.recorder.extend();
    this.timeline.follow(f);
    this.showFrame();
    this.ensureFrames();
    this.schedule("frame");
    this.schedule("timeline");
    if (user && !this.model.get("playing")) this.syncFrame();
  }

  /** A user seek to frame `f`. */
  seek(/** @type {number} */ f) {
    this.setFrame(f, true);
  }

  /** Arrow keys: `by` frames back or forward. */
  step(/** @type {KeyboardEvent} */ e, /** @type {number} */ by) {
    this.timing.mark(e, "step");
    this.seek(this.frame + (e.key === "ArrowRight" ? by : -by));
  }

  /** Ask Python to move the playhead (it knows the bouts and the model's output). */
  seekTarget(/** @type {SeekTarget} */ target, /** @type {number} */ direction) {
    this.recorder.stop();
    this.syncFrame();
    this.send({ type: "seek", target, behavior: this.selected, direction });
  }

  /** Tell Python the playhead and any recorded range (at most ~10x/s while playing). */
  syncFrame() {
    this.lastSync = performance.now();
    if ((this.model.get("frame") | 0) !== this.frame) {
      this.model.set("frame", this.frame);
      this.model.save_changes();
    }
    this.recorder.flush();
  }

  ensureFrames() {
    const playing = !!this.model.get("playing");
    const speed = Number(this.model.get("speed")) || 1;
    const ahead = playing ? Math.min(120, Math.max(AHEAD, Math.ceil(this.fps * speed * 1.5))) : AHEAD;
    this.loader.ensure(this.frame, this.data.n, ahead);
  }

  showFrame() {
    this.controls.showFrame(this.frame, this.data.n, this.fps);
  }

  // ------------------------------------------------------------------ layout and painting
  layout() {
    const width = Math.max(200, this.root.clientWidth - 2);
    this.dpr = window.devicePixelRatio || 1;
    const fw = this.model.get("frame_width") || 4;
    const fh = this.model.get("frame_height") || 3;
    const maxH = Math.max(160, Math.round(window.innerHeight * 0.55));
    const frameH = Math.min(maxH, Math.round((width * fh) / fw));
    sizeCanvas(this.frameView.canvas, width, frameH, this.dpr);
    this.timeline.size(width);
    this.schedule("all");
  }

  /**
   * Repaint at the next animation frame: "frame" (the frame canvas), "timeline" (playhead and
   * drag preview over the rows), "base" (the rows too) or "all".
   * @param {"frame" | "timeline" | "base" | "all"} what
   */
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
        if (this.needBase) {
          this.needBase = false;
          this.timeline.drawBase();
        }
        if (this.needTimeline) {
          this.needTimeline = false;
          this.timeline.draw();
        }
        if (this.needFrame) {
          this.needFrame = false;
          this.frameView.draw();
        }
      });
    }
  }

  destroy() {
    for (const [ev, cb] of this.handlers) this.model.off(ev, cb);
    this.player.destroy();
    if (this.drawRaf) cancelAnimationFrame(this.drawRaf);
    if (this.resizeObserver) this.resizeObserver.disconnect();
    this.recorder.stop();
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
