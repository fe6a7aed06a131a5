// The renlian console: a client of renlian's public v3 API that runs in the browser.
//
// It signs in like any client (an app's API key and secret key for an access token at
// /oauth/2.0/token) and then calls /rest/2.0/face/v3/... with ?access_token=. The secret key is sent
// once, in the sign-in request's body, and never stored; the token lives in sessionStorage, so it
// goes when the tab does. The only URLs that are not the public API are the console's own reads
// under ./api/ (renlian/api/console.py): the signed-in app, face thumbnails, a group's users with
// counts and a filter.
//
// Everything the server says (ids, user_info) is put into the page as text, never as HTML.

import { STRINGS } from "./strings.js";
import { ZipError, zipEntries } from "./zip.js";

const TOKEN_KEY = "renlian.console.token";
const LANG_KEY = "renlian.console.lang";
// Baidu's recommended "same person" threshold: renlian calibrates it to a 0.1% false-accept rate
// (docs/accuracy.md).
const SAME_PERSON = 80;
// detect takes at most 2 MiB of base64 text, about 1.5 MB of file: a photo larger than this is
// shrunk and re-encoded in the browser before it is sent. Smaller ones go as they are, so their
// face_token is the one any other client would get for the same file.
const MAX_SEND_BYTES = 1_400_000;
const MAX_SEND_SIDE = 2048;
// The formats the server decodes (renlian/vision/image.py), by their first bytes.
const SERVER_FORMATS = [
  [0xff, 0xd8, 0xff],
  [0x89, 0x50, 0x4e, 0x47],
  [0x42, 0x4d],
];
const MAX_SEARCH_USERS = 5;
// detect's largest max_face_num, and multi-search's: the faces multi-search leaves out are searched
// one by one by their face_token.
const MAX_DETECT_FACES = 120;
const MAX_MULTI_FACES = 10;
const SEARCHES_AT_ONCE = 4;
// quality_control and liveness_control: an enrolment asks for NORMAL quality unless the operator
// picks otherwise, so that a photo without a usable face (a blurred one, a dog) is refused.
const LEVELS = ["NONE", "LOW", "NORMAL", "HIGH"];
const DEFAULT_CONTROLS = { quality_control: "NORMAL", liveness_control: "NONE" };
const PAGE = 1000;
// A group's users are listed a page at a time, however many it holds.
const USERS_PAGE = 100;
const FILTER_DELAY_MS = 250;
const VIEWS = ["library", "detect", "compare", "search", "import", "usage"];
// The usage page's hourly chart: the last day.
const USAGE_HOURS = 24;
// renlian import's rules (renlian/library/importer.py, library.py): a folder per user named by its
// ID, these photo suffixes, IDs of letters, digits and _ up to 128 bytes.
const PHOTO_SUFFIXES = [".jpg", ".jpeg", ".png", ".bmp"];
const USER_ID = /^[A-Za-z0-9_]+$/;
const MAX_USER_ID_BYTES = 128;
const IMPORT_WORKERS = 2;
// What an interrupted import had finished, per app, group and archive, so that choosing the same
// archive again resumes it.
const IMPORT_KEY = "renlian.console.import";
const COLORS = ["#0ea5e9", "#f59e0b", "#a855f7", "#10b981", "#ef4444", "#6366f1"];
const MATCH_COLOR = "#15803d";
const NO_MATCH_COLOR = "#64748b";

// The server's root, worked out from the page's own URL so that a console served under a path
// prefix (behind a reverse proxy) still finds the API.
const ROOT = new URL("..", location.href);
const CONSOLE = new URL(".", location.href);

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

let token = sessionStorage.getItem(TOKEN_KEY);
let lang = localStorage.getItem(LANG_KEY) || (navigator.language.startsWith("zh") ? "zh" : "en");
// Each navigation bumps this; an answer that arrives for an older one is dropped.
let generation = 0;

const state = {
  groups: [],
  group: null,
  users: [], // [{user_id, user_info}]: one page of the group's users that match the filter
  listing: null, // {group_id, user_num, face_num, match_num}, or null while it loads
  userFilter: "",
  userStart: 0,
  user: null,
  userInfo: null,
  faces: [],
  detect: null, // {bitmap, faces}
  compare: null, // {score}
  search: null, // {group, users: [{user_id, group_id, user_info, score, face_token}]}
  usage: null, // GET /console/api/usage's answer
  import: null, // {photos, ignored, key, name, results: Map(path -> outcome), running, stopping}
};

// ---------------------------------------------------------------- labels

function t(key, vars = {}) {
  const text = STRINGS[lang][key] ?? STRINGS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ""));
}

/** Sets an element's text from a label key, and remembers it so a language switch redoes it. */
function label(element, key, vars = {}) {
  element.dataset.i18n = key;
  element.dataset.i18nVars = JSON.stringify(vars);
  element.textContent = t(key, vars);
  return element;
}

function applyLanguage() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  // A message shown in the other language goes rather than stay untranslated.
  $("#toast").hidden = true;
  document.title = t("app.title");
  for (const element of $$("[data-i18n]")) {
    element.textContent = t(element.dataset.i18n, JSON.parse(element.dataset.i18nVars || "{}"));
  }
  for (const element of $$("[data-i18n-placeholder]")) {
    element.placeholder = t(element.dataset.i18nPlaceholder);
  }
  for (const element of $$("[data-i18n-label]")) {
    element.setAttribute("aria-label", t(element.dataset.i18nLabel));
  }
  for (const box of $$(".form-error")) if (shownFailures.has(box)) showFailure(box, shownFailures.get(box));
  // Texts drawn from data (detect's canvas and attributes, alt texts, the import report) are drawn again.
  renderDetect();
  renderFaces();
  renderImport();
  renderUsage();
}

// ---------------------------------------------------------------- the API

class ApiError extends Error {
  constructor(code, message, detail) {
    super(message);
    this.code = code;
    this.detail = detail;
  }
}

/** A refused sign-in: shown on the sign-in form rather than as a message. */
class SignInError extends ApiError {}

/** The server's own reason: its code translated where the console knows it, its message otherwise,
 * and its detail (what exactly failed) as it said it. */
function reasonText(error) {
  const known = `error.${error.code}`;
  const reason = STRINGS.en[known] ? t(known) : error.message;
  const detail = error.detail && error.detail !== error.message ? t("error.detail", { detail: error.detail }) : "";
  return reason + detail;
}

function errorText(error) {
  if (error instanceof ApiError) return t("error", { code: error.code, message: reasonText(error) });
  if (error instanceof TypeError) return t("error.network");
  return String(error.message || error);
}

async function signIn(apiKey, secretKey) {
  // In the body, not the query string: URLs end up in server and proxy logs.
  const body = new URLSearchParams({
    grant_type: "client_credentials",
    client_id: apiKey,
    client_secret: secretKey,
  });
  const response = await fetch(new URL("oauth/2.0/token", ROOT), { method: "POST", body }).catch(() => {
    throw new SignInError("network", t("error.network"));
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok || !answer.access_token) {
    throw new SignInError(answer.error || response.status, answer.error_description || response.statusText);
  }
  token = answer.access_token;
  sessionStorage.setItem(TOKEN_KEY, token);
}

function signOut(message) {
  token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  Object.assign(state, { groups: [], group: null, users: [], user: null, faces: [] });
  Object.assign(state, { detect: null, compare: null, search: null, usage: null });
  $("#app-name").hidden = true;
  // An import in progress stops after the photos being sent: the next sign-in can resume it.
  if (state.import) state.import.stopping = true;
  state.import = null;
  signedInApp = null;
  for (const list of $$("#group-list, #user-list, #faces, #search-results, #search-candidates, #detect-faces")) {
    list.replaceChildren();
  }
  const error = $("#signin-error");
  error.hidden = !message;
  if (message) label(error, message);
  if (location.hash) history.replaceState(null, "", location.pathname);
  route();
}

/** One v3 call: the body as JSON, the token in the query string, the result or an ApiError. */
async function v3(path, body) {
  const url = new URL(`rest/2.0/face/v3/${path}`, ROOT);
  url.searchParams.set("access_token", token);
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  // Baidu's envelope comes with HTTP 200 even for errors; anything else is a proxy's or a crash's page.
  const answer = await response.json().catch(() => {
    throw new ApiError(response.status, response.statusText || "not JSON");
  });
  if (answer.error_code !== 0) {
    // 100, 110, 111: no token, a revoked one, an expired one.
    if ([100, 110, 111].includes(answer.error_code)) signOut("signin.expired");
    throw new ApiError(answer.error_code, answer.error_msg, answer.error_detail);
  }
  return answer.result;
}

function userHref(group, user) {
  return `#/library/${encodeURIComponent(group)}/${encodeURIComponent(user)}`;
}

/** One of the console's own reads (renlian/api/console.py): refusals come as HTTP statuses. */
async function consoleApi(path, params = {}) {
  const url = new URL(`api/${path}`, CONSOLE);
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  url.searchParams.set("access_token", token);
  const response = await fetch(url);
  const answer = await response.json().catch(() => ({}));
  if (response.status === 401) signOut("signin.expired");
  if (!response.ok) throw new ApiError(response.status, answer.detail || response.statusText);
  return answer;
}

function faceUrl(faceToken) {
  const url = new URL(`api/faces/${faceToken}.jpg`, CONSOLE);
  url.searchParams.set("access_token", token);
  return url.href;
}

// ---------------------------------------------------------------- photos

function readBase64(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    // A data: URL; the API wants only what follows "base64,".
    reader.onload = () => resolve(reader.result.slice(reader.result.indexOf(",") + 1));
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}

/** Whether the server reads this file as it is: JPEG, PNG or BMP, by its first bytes (a file's name
 * and MIME type may say otherwise, and a zip's entries have neither). */
async function serverReads(blob) {
  const head = new Uint8Array(await blob.slice(0, 4).arrayBuffer());
  return SERVER_FORMATS.some((magic) => magic.every((byte, index) => head[index] === byte));
}

/**
 * The photo as it will be sent ({blob, base64}): as it is when the server reads its format and it
 * fits a body; otherwise re-encoded as JPEG by the browser (WebP, AVIF, GIF and whatever else the
 * browser shows), shrunk if it is too large. A file the browser cannot read either goes as it is,
 * and the server says why it refuses it.
 */
async function preparePhoto(file) {
  let blob = file;
  const readable = await serverReads(file);
  const bitmap = file.size > MAX_SEND_BYTES || !readable ? await createImageBitmap(file).catch(() => null) : null;
  if (bitmap) {
    const scale = Math.min(1, MAX_SEND_SIDE / Math.max(bitmap.width, bitmap.height));
    const canvas = document.createElement("canvas");
    canvas.width = Math.round(bitmap.width * scale);
    canvas.height = Math.round(bitmap.height * scale);
    canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.9));
  }
  return { blob, base64: await readBase64(blob) };
}

/** Fills a `[data-drop]` element with a file picker that also takes a dropped file. */
function dropZone(container, onChange) {
  const id = `file-${Math.random().toString(36).slice(2)}`;
  const input = Object.assign(document.createElement("input"), {
    type: "file",
    accept: "image/*",
    id,
    className: "visually-hidden",
  });
  const zone = document.createElement("label");
  zone.htmlFor = id;
  zone.className = "drop-zone";
  const preview = Object.assign(document.createElement("img"), { className: "preview", alt: "" });
  preview.hidden = true;
  const prompt = label(document.createElement("span"), "drop.prompt");
  const chosen = Object.assign(document.createElement("span"), { className: "chosen" });
  zone.append(preview, prompt, chosen);
  container.replaceChildren(input, zone);

  let file = null;
  function choose(picked) {
    if (preview.src) URL.revokeObjectURL(preview.src);
    file = picked && picked.type.startsWith("image/") ? picked : null;
    preview.hidden = !file;
    if (file) {
      preview.src = URL.createObjectURL(file);
      label(chosen, "drop.chosen", { name: file.name, size: Math.ceil(file.size / 1024) });
    } else {
      preview.removeAttribute("src");
      chosen.textContent = picked ? t("drop.unreadable") : "";
      delete chosen.dataset.i18n;
    }
    container.classList.toggle("has-file", Boolean(file));
    onChange(file);
  }
  input.addEventListener("change", () => choose(input.files[0] || null));
  // Without preventDefault on dragover the browser would open a dropped file instead.
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    choose(event.dataTransfer.files[0] || null);
  });
  return {
    get file() {
      return file;
    },
    clear() {
      input.value = "";
      choose(null);
    },
  };
}

// ---------------------------------------------------------------- page furniture

function el(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "text") element.textContent = value;
    else if (name === "class") element.className = value;
    else element.setAttribute(name, value);
  }
  element.append(...children);
  return element;
}

let toastTimer;
function notify(message, kind = "info") {
  const toast = $("#toast");
  toast.textContent = message;
  toast.className = `toast ${kind}`;
  toast.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (toast.hidden = true), kind === "error" ? 8000 : 4000);
}

// The failure each form's error line shows, so that a language switch words it again.
const shownFailures = new WeakMap();

/** Shows `content` (text or elements) in a form's error line; nothing hides it. */
function showError(box, ...content) {
  delete box.dataset.i18n;
  shownFailures.delete(box);
  box.replaceChildren(...content);
  box.hidden = content.length === 0;
}

function showFailure(box, error) {
  showError(box, errorText(error));
  shownFailures.set(box, error);
}

/** Runs `work` with `button` showing that it is busy; a failure becomes a message, in `errorBox`
 * (a form's own error line, where the operator is looking) when there is one. */
async function act(button, work, errorBox = null) {
  button.disabled = true;
  button.classList.add("busy");
  if (errorBox) showError(errorBox);
  try {
    return await work();
  } catch (error) {
    if (error instanceof SignInError) {
      // The token endpoint's own error, worded in the page's language where the console knows it.
      const known = `signin.${error.code}`;
      if (STRINGS.en[known]) label($("#signin-error"), known).hidden = false;
      else label($("#signin-error"), "signin.failed", { detail: `${error.message} (${error.code})` }).hidden = false;
    } else if (token && errorBox) {
      showFailure(errorBox, error);
    } else if (token) {
      notify(errorText(error), "error");
    }
    // Signed out by the failure (an expired token): the sign-in form already says why.
    return undefined;
  } finally {
    button.classList.remove("busy");
    button.disabled = false;
    refreshButtons();
  }
}

/** Asks to confirm `text`; with `typed`, the operator must also type that name to go on. */
function confirmDialog(text, typed = null) {
  const dialog = $("#confirm");
  $("#confirm-text").textContent = text;
  const field = $("#confirm-name-field");
  const input = $("#confirm-name");
  const ok = $("#confirm button[value=ok]");
  field.hidden = typed === null;
  input.value = "";
  ok.disabled = typed !== null;
  input.oninput = () => (ok.disabled = input.value.trim() !== typed);
  if (typed !== null) label($("#confirm-name-prompt"), "confirm.type", { name: typed });
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

const zones = {};
function refreshButtons() {
  $("#enrol-new button[type=submit]").disabled = !zones.enrolNew?.file;
  $("#enrol-more button[type=submit]").disabled = !zones.enrolMore?.file;
  $("#compare-form button[type=submit]").disabled = !(zones.first?.file && zones.second?.file);
  $("#search-form button[type=submit]").disabled = !(zones.search?.file && $("#search-group").value);
}

// ---------------------------------------------------------------- navigation

/** `#/library/<group>/<user>`, `#/detect`, `#/compare`, `#/search`. */
function route() {
  const signedIn = Boolean(token);
  $("#tabs").hidden = !signedIn;
  $("#signout").hidden = !signedIn;
  let [view = "library", group, user] = location.hash
    .replace(/^#\/?/, "")
    .split("/")
    .filter(Boolean)
    .map((part) => decodeURIComponent(part.replace(/%(?![0-9a-f]{2})/gi, "%25")));
  if (!VIEWS.includes(view)) view = "library";
  const shown = signedIn ? view : "signin";
  for (const section of $$(".view")) section.hidden = section.id !== `view-${shown}`;
  for (const tab of $$("#tabs a")) tab.classList.toggle("active", tab.dataset.view === shown);
  generation += 1;
  if (!signedIn) {
    $("#api-key").focus();
  } else if (shown === "library") {
    loadLibrary(group || null, user || null, generation).catch((error) => notify(errorText(error), "error"));
  } else if (shown === "search") {
    loadSearch(generation).catch((error) => notify(errorText(error), "error"));
  } else if (shown === "import") {
    loadImport(group || null, generation).catch((error) => notify(errorText(error), "error"));
  } else if (shown === "usage") {
    loadUsage(generation).catch((error) => notify(errorText(error), "error"));
  }
  if (signedIn) showApp();
}

// ---------------------------------------------------------------- library

async function loadLibrary(group, user, current) {
  const library = $("#view-library");
  library.dataset.depth = user ? "2" : group ? "1" : "0";
  const groups = await v3("faceset/group/getlist", { start: 0, length: PAGE });
  if (current !== generation) return;
  if (group !== state.group) {
    // Another group: its list starts unfiltered, at its first page.
    Object.assign(state, { userFilter: "", userStart: 0, listing: null, users: [] });
    $("#user-filter").value = "";
  }
  Object.assign(state, { groups: groups.group_id_list, group, user });
  Object.assign(state, { userInfo: null, faces: [], userLoaded: false });
  if (group && !state.groups.includes(group)) {
    location.hash = "#/library";
    return;
  }
  renderGroups();
  renderUsers();
  renderUser();
  if (!group) return;
  // The user is read by its ID, not looked for in the list: a direct link reaches any user of a
  // group, whichever page of the list holds it.
  await Promise.all([loadUsers(), user ? loadUser(group, user, current) : null]);
}

let usersRequest = 0;

/** The open group's counts and the page of its users that `state.userFilter` and `userStart` pick. */
async function loadUsers() {
  const request = ++usersRequest;
  const { group, userFilter, userStart } = state;
  const listing = await consoleApi(`groups/${encodeURIComponent(group)}/users`, {
    filter: userFilter,
    start: userStart,
    length: USERS_PAGE,
  });
  // A later keystroke or page, or another group, has asked since: its answer wins.
  if (request !== usersRequest || group !== state.group) return;
  state.listing = listing;
  state.users = listing.user_list;
  renderUsers();
}

async function loadUser(group, user, current) {
  let record, faces;
  try {
    [record, faces] = await Promise.all([
      v3("faceset/user/get", { user_id: user, group_id: group }),
      v3("faceset/face/getlist", { user_id: user, group_id: group }),
    ]);
  } catch (error) {
    if (!(error instanceof ApiError && error.code === 223103) || current !== generation) throw error;
    notify(t("user.missing", { user, group }), "error");
    location.hash = `#/library/${encodeURIComponent(group)}`;
    return;
  }
  if (current !== generation) return;
  state.userInfo = record.user_list[0]?.user_info ?? null;
  state.faces = faces.face_list;
  state.userLoaded = true;
  renderUser();
}

function number(value) {
  return value.toLocaleString(lang === "zh" ? "zh-CN" : "en");
}

function renderGroups() {
  const list = $("#group-list");
  list.replaceChildren(
    ...state.groups.map((group) =>
      el(
        "li",
        {},
        el("a", {
          href: `#/library/${encodeURIComponent(group)}`,
          class: group === state.group ? "selected" : "",
          text: group,
        }),
      ),
    ),
  );
  $("#groups-empty").hidden = state.groups.length > 0;
}

function renderUsers() {
  const group = state.group;
  $("#users-pick").hidden = Boolean(group);
  $("#users-body").hidden = !group;
  if (!group) return;
  label($("#users-title"), "users.title", { group });
  $("#users-import").href = `#/import/${encodeURIComponent(group)}`;
  const { listing, userFilter, userStart } = state;
  $("#user-list").replaceChildren(
    ...state.users.map(({ user_id: user, user_info: info }) => {
      const link = el("a", { href: userHref(group, user), class: user === state.user ? "selected" : "" }, user);
      if (info && info !== user) link.append(el("span", { class: "muted info", text: info }));
      return el("li", {}, link);
    }),
  );
  const count = $("#users-count");
  const pager = $("#users-pager");
  $("#users-empty").hidden = !listing || listing.match_num > 0;
  pager.hidden = !listing || listing.match_num <= USERS_PAGE;
  if (!listing) {
    count.textContent = "";
    return;
  }
  const users = number(listing.user_num);
  const faces = number(listing.face_num);
  if (userFilter) label(count, "users.matching", { n: number(listing.match_num), users, filter: userFilter });
  else label(count, "users.count", { users, faces });
  label($("#users-empty"), userFilter ? "users.none_match" : "users.empty", { filter: userFilter });
  const last = Math.min(userStart + USERS_PAGE, listing.match_num);
  label($("#users-range"), "users.range", { first: number(userStart + 1), last: number(last), n: number(listing.match_num) });
  $("#users-prev").disabled = userStart === 0;
  $("#users-next").disabled = last >= listing.match_num;
}

function renderUser() {
  const { group, user, userLoaded } = state;
  $("#user-body").hidden = !userLoaded;
  $("#user-pick").hidden = Boolean(userLoaded || !group);
  const back = $("#user-back");
  back.href = `#/library/${encodeURIComponent(group || "")}`;
  if (group) label(back, "user.back", { group });
  // Cleared while a user loads, so that nothing on the page is another user's.
  renderFaces();
  if (!userLoaded) return;
  $("#user-title").textContent = user;
  const info = $("#user-info");
  if (state.userInfo) {
    delete info.dataset.i18n;
    info.textContent = state.userInfo;
  } else label(info, "user.no_info");
  label($("#enrol-more-title"), "enrol.more", { user });
  const others = state.groups.filter((other) => other !== group);
  $("#copy-target").replaceChildren(...others.map((other) => el("option", { value: other, text: other })));
  $("#copy-form").hidden = others.length === 0;
  $("#copy-none").hidden = others.length > 0;
}

function renderFaces() {
  const { user } = state;
  $("#faces").replaceChildren(
    ...state.faces.map((face, index) => {
      const image = el("img", {
        src: faceUrl(face.face_token),
        alt: t("user.face.alt", { n: index + 1, user }),
        width: "112",
        height: "112",
        "data-face-token": face.face_token,
      });
      const remove = el("button", { type: "button", class: "danger small", text: t("user.face.delete") });
      remove.addEventListener("click", () => deleteFace(remove, face.face_token));
      const caption = face.ctime ? el("span", { class: "muted", text: t("user.added", { time: face.ctime }) }) : "";
      return el("li", {}, image, caption, remove);
    }),
  );
}

/** The quality and liveness checks an enrolment asks the server for, as two selects. */
function controlFields(container) {
  const select = (name) => {
    const field = el("select", { name });
    for (const level of LEVELS) {
      // `selected` as an attribute, so that resetting the form comes back to it.
      const option = label(el("option", { value: level }), `level.${level}`);
      option.defaultSelected = level === DEFAULT_CONTROLS[name];
      field.append(option);
    }
    return el("label", {}, label(el("span"), `enrol.${name}`), field);
  };
  const hint = label(el("p", { class: "muted hint" }), "enrol.controls.hint");
  container.replaceChildren(select("quality_control"), select("liveness_control"), hint);
}

function controlsOf(form) {
  return { quality_control: form.elements.quality_control.value, liveness_control: form.elements.liveness_control.value };
}

async function userExists(group, user) {
  try {
    await v3("faceset/user/get", { user_id: user, group_id: group });
    return true;
  } catch (error) {
    if (error instanceof ApiError && error.code === 223103) return false;
    throw error;
  }
}

/** A photo file as user/add takes it (shrunk first if it is too large for a body). */
async function photoImage(file) {
  const photo = await preparePhoto(file);
  return { image: photo.base64, image_type: "BASE64" };
}

/**
 * Enrols `image()` (user/add's image and image_type) for `userId` in `group`, with the form's
 * checks; true once enrolled. A new user's ID must be free: user/add would otherwise add the photo
 * to whoever holds that ID and overwrite their info, so an ID in use is refused with a link to its
 * user, where adding a photo is an explicit action.
 */
async function enrol(form, { group, userId, userInfo, isNew, image }) {
  const errorBox = $(".form-error", form);
  const done = await act(
    $("button[type=submit]", form),
    async () => {
      if (isNew && (await userExists(group, userId))) {
        const open = label(el("a", { href: userHref(group, userId) }), "enrol.exists.open", { user: userId });
        showError(errorBox, label(el("span"), "enrol.exists", { user: userId, group }), " ", open);
        return false;
      }
      const body = { ...(await image()), group_id: group, user_id: userId, ...controlsOf(form) };
      if (userInfo) body.user_info = userInfo;
      await v3("faceset/user/add", body);
      notify(t("enrol.done", { user: userId, group }));
      return true;
    },
    errorBox,
  );
  return Boolean(done);
}

function openUser(group, user) {
  const target = userHref(group, user);
  if (location.hash === target) route();
  else location.hash = target;
}

async function deleteFace(button, faceToken) {
  const { group, user } = state;
  if (!(await confirmDialog(t("user.face.delete.confirm", { user })))) return;
  await act(button, async () => {
    await v3("faceset/face/delete", { user_id: user, group_id: group, face_token: faceToken });
    notify(t("user.face.deleted"));
    // The user goes with its last face: route() then falls back to the group.
    route();
  });
}

function setUpLibrary() {
  $("#group-add").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("#new-group");
    const group = input.value.trim();
    act(event.submitter || $("#group-add button"), async () => {
      await v3("faceset/group/add", { group_id: group });
      input.value = "";
      notify(t("groups.added", { group }));
      location.hash = `#/library/${encodeURIComponent(group)}`;
    });
  });

  let filterTimer;
  $("#user-filter").addEventListener("input", (event) => {
    clearTimeout(filterTimer);
    // One request once the operator pauses, not one per keystroke.
    filterTimer = setTimeout(() => {
      Object.assign(state, { userFilter: event.target.value.trim(), userStart: 0 });
      loadUsers().catch((error) => notify(errorText(error), "error"));
    }, FILTER_DELAY_MS);
  });
  for (const [button, step] of [
    ["#users-prev", -USERS_PAGE],
    ["#users-next", USERS_PAGE],
  ]) {
    $(button).addEventListener("click", () => {
      state.userStart = Math.max(0, state.userStart + step);
      loadUsers().catch((error) => notify(errorText(error), "error"));
    });
  }

  $("#group-delete").addEventListener("click", async (event) => {
    const { group } = state;
    // What goes with the group, counted now, and its name typed: a group of a thousand users is not
    // deleted by one click on a generic question.
    const counts = await consoleApi(`groups/${encodeURIComponent(group)}/users`, { length: 1 }).catch((error) => {
      notify(errorText(error), "error");
      return null;
    });
    if (!counts) return;
    const text = t("groups.delete.confirm", { group, users: number(counts.user_num), faces: number(counts.face_num) });
    if (!(await confirmDialog(text, group))) return;
    act(event.target, async () => {
      await v3("faceset/group/delete", { group_id: group });
      notify(t("groups.deleted", { group }));
      location.hash = "#/library";
    });
  });

  $("#user-delete").addEventListener("click", async (event) => {
    const { group, user } = state;
    if (!(await confirmDialog(t("user.delete.confirm", { user, group })))) return;
    act(event.target, async () => {
      await v3("faceset/user/delete", { user_id: user, group_id: group });
      notify(t("user.deleted", { user }));
      location.hash = `#/library/${encodeURIComponent(group)}`;
    });
  });

  $("#copy-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const { group, user } = state;
    const target = $("#copy-target").value;
    act(event.submitter || $("#copy-form button"), async () => {
      await v3("faceset/user/copy", { user_id: user, src_group_id: group, dst_group_id: target });
      notify(t("user.copied", { user, group: target }));
    });
  });

  for (const container of $$("[data-controls]")) controlFields(container);
  zones.enrolNew = dropZone($("#enrol-new [data-drop]"), refreshButtons);
  $("#enrol-new").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const { group } = state;
    const userId = form.elements.user_id.value.trim();
    const image = () => photoImage(zones.enrolNew.file);
    if (await enrol(form, { group, userId, userInfo: form.elements.user_info.value, isNew: true, image })) {
      zones.enrolNew.clear();
      form.reset();
      openUser(group, userId);
    }
  });

  zones.enrolMore = dropZone($("#enrol-more [data-drop]"), refreshButtons);
  $("#enrol-more").addEventListener("submit", async (event) => {
    event.preventDefault();
    const { group, user } = state;
    const image = () => photoImage(zones.enrolMore.file);
    if (await enrol(event.target, { group, userId: user, userInfo: null, isNew: false, image })) {
      zones.enrolMore.clear();
      openUser(group, user);
    }
  });
}

// ---------------------------------------------------------------- detect

function setUpDetect() {
  zones.detect = dropZone($("#detect-drop"), (file) => {
    if (!file) return;
    const summary = $("#detect-summary");
    label(summary, "busy");
    state.detect = null;
    renderDetect();
    // Detect runs as soon as a photo is chosen: there is nothing else to set.
    act(zones.detectButton, async () => {
      const photo = await preparePhoto(file);
      const result = await v3("detect", {
        image: photo.base64,
        image_type: "BASE64",
        max_face_num: MAX_DETECT_FACES,
        face_field: "age,gender,expression,glasses,quality,landmark",
      });
      // Drawn from the photo that was sent: the coordinates are in its frame.
      const bitmap = await createImageBitmap(photo.blob);
      state.detect = { bitmap, base64: photo.base64, faces: result.face_list, matches: null };
      renderDetect();
      await loadGroupChoices();
    }).then(() => {
      if (!state.detect) summary.textContent = "";
    });
  });
  // act() wants a button to mark busy; the drop zone's own label stands in for one.
  zones.detectButton = $("#detect-drop label");

  $("#detect-search").addEventListener("submit", (event) => {
    event.preventDefault();
    const group = $("#detect-group").value;
    act(event.submitter, async () => {
      state.detect.matches = null;
      renderDetect();
      state.detect.matches = await searchEveryFace(state.detect, group);
      state.detect.group = group;
      renderDetect();
    });
  });

  const dialog = $("#enrol-face");
  $("#enrol-face button[value=cancel]").addEventListener("click", () => dialog.close());
  $("#enrol-face-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const faceToken = dialog.dataset.faceToken;
    const group = form.elements.group_id.value;
    const userId = form.elements.user_id.value.trim();
    // The face as detect saw it, by its face_token: no photo is sent again.
    const image = async () => ({ image: faceToken, image_type: "FACE_TOKEN" });
    if (await enrol(form, { group, userId, userInfo: form.elements.user_info.value, isNew: true, image })) {
      dialog.close();
      // The next face is another person; the group and the checks usually stay.
      form.elements.user_id.value = form.elements.user_info.value = "";
    }
  });
}

/** The groups a face can be searched in or enrolled into, for detect's two group pickers. */
async function loadGroupChoices() {
  const groups = await v3("faceset/group/getlist", { start: 0, length: PAGE });
  state.groups = groups.group_id_list;
  for (const select of [$("#detect-group"), $("#enrol-face-group")]) {
    const chosen = select.value || state.group;
    select.replaceChildren(...state.groups.map((group) => el("option", { value: group, text: group })));
    if (state.groups.includes(chosen)) select.value = chosen;
  }
  $("#detect-search").hidden = state.groups.length === 0 || !state.detect?.faces.length;
}

/**
 * The best user of `group` for every face of the detected photo, by face_token (null where the group
 * has none). multi-search takes the photo's largest faces in one pass; the faces beyond its limit
 * are searched one by one by the face_token detect gave them, a few at a time. Both ask for every
 * candidate (match_threshold 0): the verdict is drawn at the operator's threshold.
 */
async function searchEveryFace(detected, group) {
  const best = new Map();
  const multi = await v3("multi-search", {
    image: detected.base64,
    image_type: "BASE64",
    group_id_list: group,
    max_face_num: MAX_MULTI_FACES,
    max_user_num: 1,
    match_threshold: 0,
  });
  // The same photo gives the same face_tokens: multi-search's faces are detect's.
  for (const face of multi.face_list) best.set(face.face_token, face.user_list[0] ?? null);
  const rest = detected.faces.filter((face) => !best.has(face.face_token));
  const searchOne = async (face) => {
    try {
      const found = await v3("search", {
        image: face.face_token,
        image_type: "FACE_TOKEN",
        group_id_list: group,
        max_user_num: 1,
        match_threshold: 0,
      });
      best.set(face.face_token, found.user_list[0] ?? null);
    } catch (error) {
      // 222207: the group holds no one to compare with.
      if (!(error instanceof ApiError && error.code === 222207)) throw error;
      best.set(face.face_token, null);
    }
  };
  for (let start = 0; start < rest.length; start += SEARCHES_AT_ONCE) {
    await Promise.all(rest.slice(start, start + SEARCHES_AT_ONCE).map(searchOne));
  }
  return best;
}

/** The face's best user at or above the operator's threshold, or null. */
function matchOf(face) {
  const user = state.detect?.matches?.get(face.face_token);
  return user && user.score >= threshold() ? user : null;
}

function renderDetect() {
  const canvas = $("#detect-canvas");
  const summary = $("#detect-summary");
  const info = $("#detect-faces");
  const searched = $("#detect-search-summary");
  if (!state.detect) {
    canvas.hidden = true;
    searched.hidden = true;
    $("#detect-search").hidden = true;
    delete canvas.dataset.faces;
    delete canvas.dataset.matched;
    info.replaceChildren();
    return;
  }
  const { bitmap, faces, matches } = state.detect;
  label(summary, faces.length === 1 ? "detect.one" : faces.length ? "detect.count" : "detect.none", {
    n: faces.length,
  });
  canvas.hidden = false;
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const context = canvas.getContext("2d");
  context.drawImage(bitmap, 0, 0);
  // Lines and text keep their size on screen whatever the photo's resolution.
  const unit = Math.max(1, Math.max(bitmap.width, bitmap.height) / 640);
  faces.forEach((face, index) => drawFace(context, face, index, unit));
  canvas.dataset.faces = String(faces.length);
  info.replaceChildren(...faces.map((face, index) => faceCard(face, index)));
  searched.hidden = !matches;
  if (matches) {
    const matched = faces.filter(matchOf).length;
    canvas.dataset.matched = String(matched);
    label(searched, "detect.search.done", {
      matched,
      n: faces.length,
      group: state.detect.group,
      threshold: threshold(),
    });
  } else delete canvas.dataset.matched;
}

function drawFace(context, face, index, unit) {
  const color = COLORS[index % COLORS.length];
  const { left, top, width, height } = face.location;
  context.lineWidth = 2 * unit;
  context.strokeStyle = color;
  context.strokeRect(left, top, width, height);

  context.fillStyle = color;
  for (const point of face.landmark72 || []) {
    context.beginPath();
    context.arc(point.x, point.y, 1.8 * unit, 0, 2 * Math.PI);
    context.fill();
  }

  const parts = [`${index + 1}`];
  let tagColor = color;
  if (state.detect.matches) {
    // After a search, the tag says who the face is, in green, or that nobody in the group reaches
    // the threshold, in grey.
    const match = matchOf(face);
    parts.push(match ? `${match.user_id} ${match.score.toFixed(1)}` : t("detect.nomatch"));
    tagColor = match ? MATCH_COLOR : NO_MATCH_COLOR;
  } else {
    if (face.age !== undefined) parts.push(String(face.age));
    if (face.gender) parts.push(t(`value.${face.gender.type}`));
    if (face.expression && face.expression.type !== "none") parts.push(t(`value.${face.expression.type}`));
    if (face.glasses && face.glasses.type !== "none") parts.push(t(`value.${face.glasses.type}`));
  }
  const text = parts.join(" · ");
  // Smaller on small faces, so that the tags of a crowded photo stay apart, but always readable.
  const size = Math.max(9 * unit, Math.min(13 * unit, width / 4));
  context.font = `600 ${size}px system-ui, sans-serif`;
  const tagWidth = context.measureText(text).width + size;
  const tagHeight = size * 1.6;
  // Above the box, or inside it when the box touches the top of the photo.
  const tagTop = top - tagHeight >= 0 ? top - tagHeight : top;
  context.fillStyle = tagColor;
  context.fillRect(left - context.lineWidth / 2, tagTop, tagWidth, tagHeight);
  context.fillStyle = "#fff";
  context.textBaseline = "middle";
  context.fillText(text, left + size / 2, tagTop + tagHeight / 2);
}

function percent(probability) {
  return `${Math.round(probability * 100)}%`;
}

function faceCard(face, index) {
  const rows = [];
  const row = (key, value) => rows.push(el("dt", { text: t(key) }), el("dd", { text: value }));
  const kind = (attribute) => `${t(`value.${attribute.type}`)} (${percent(attribute.probability)})`;
  row("attr.probability", percent(face.face_probability));
  if (face.age !== undefined) row("attr.age", String(face.age));
  if (face.gender) row("attr.gender", kind(face.gender));
  if (face.expression) row("attr.expression", kind(face.expression));
  if (face.glasses) row("attr.glasses", kind(face.glasses));
  if (face.angle) {
    const { yaw, pitch, roll } = face.angle;
    row("attr.angle", `${yaw.toFixed(0)}° / ${pitch.toFixed(0)}° / ${roll.toFixed(0)}°`);
  }
  const quality = face.quality;
  if (quality) {
    row("attr.blur", quality.blur.toFixed(2));
    row("attr.illumination", String(quality.illumination));
    row("attr.completeness", t(quality.completeness ? "value.yes" : "value.no"));
    const occlusion = Object.entries(quality.occlusion)
      .map(([part, value]) => `${t(`part.${part}`)} ${value.toFixed(2)}`)
      .join(", ");
    row("attr.occlusion", occlusion);
  }
  const matches = state.detect.matches;
  if (matches) {
    const user = matches.get(face.face_token);
    const match = matchOf(face);
    if (match) row("detect.match", `${match.user_id} (${match.score.toFixed(1)})`);
    else if (user) row("detect.match", t("detect.nomatch.best", { user: user.user_id, score: user.score.toFixed(1) }));
    else row("detect.match", t("detect.nomatch"));
  }
  const swatch = el("span", { class: "swatch" });
  swatch.style.background = COLORS[index % COLORS.length];
  const enrolButton = el("button", { type: "button", class: "small", text: t("enrol.face") });
  enrolButton.addEventListener("click", () => openFaceEnrolment(face));
  return el(
    "section",
    { class: `face-card${matchOf(face) ? " matched" : ""}`, "data-face-token": face.face_token },
    el("h3", {}, swatch, t("detect.face", { n: index + 1 })),
    el("dl", {}, ...rows),
    enrolButton,
  );
}

/** The enrolment dialog for one detected face, with its picture cut from the photo. */
async function openFaceEnrolment(face) {
  const dialog = $("#enrol-face");
  const form = $("#enrol-face-form");
  dialog.dataset.faceToken = face.face_token;
  showError($(".form-error", form));
  const { left, top, width, height } = face.location;
  const crop = document.createElement("canvas");
  crop.width = crop.height = 112;
  crop.getContext("2d").drawImage(state.detect.bitmap, left, top, width, height, 0, 0, 112, 112);
  $("#enrol-face-preview").src = crop.toDataURL("image/jpeg");
  await loadGroupChoices();
  if (state.groups.length === 0) {
    notify(t("search.nogroups"), "error");
    return;
  }
  dialog.showModal();
}

// ---------------------------------------------------------------- compare

function setUpCompare() {
  const form = $("#compare-form");
  const [first, second] = $$("[data-drop]", form);
  const changed = () => {
    state.compare = null;
    $("#compare-result").hidden = true;
    refreshButtons();
  };
  zones.first = dropZone(first, changed);
  zones.second = dropZone(second, changed);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    act(event.submitter, async () => {
      const photos = await Promise.all([preparePhoto(zones.first.file), preparePhoto(zones.second.file)]);
      const result = await v3(
        "match",
        photos.map((photo) => ({ image: photo.base64, image_type: "BASE64" })),
      );
      state.compare = { score: result.score };
      renderCompare();
    });
  });
}

function renderCompare() {
  const { score } = state.compare;
  $("#compare-result").hidden = false;
  $("#compare-score").textContent = score.toFixed(2);
  $("#compare-bar").style.width = `${Math.max(0, Math.min(100, score))}%`;
  $("#compare-result").classList.toggle("same", score >= SAME_PERSON);
  label($("#compare-verdict"), score >= SAME_PERSON ? "compare.same" : "compare.different");
}

// ---------------------------------------------------------------- search

async function loadSearch(current) {
  const groups = await v3("faceset/group/getlist", { start: 0, length: PAGE });
  if (current !== generation) return;
  state.groups = groups.group_id_list;
  const select = $("#search-group");
  const chosen = select.value || state.group;
  select.replaceChildren(...state.groups.map((group) => el("option", { value: group, text: group })));
  if (state.groups.includes(chosen)) select.value = chosen;
  $("#search-nogroups").hidden = state.groups.length > 0;
  refreshButtons();
}

/** The operator's "same person" score: 80 unless changed, read wherever a verdict is drawn. */
function threshold() {
  const value = Number($("#search-threshold").value);
  return Number.isFinite(value) && value >= 0 && value <= 100 ? value : SAME_PERSON;
}

/** Adds to each user the first of their faces in its group, for a thumbnail. */
async function withPictures(users) {
  await Promise.all(
    users.map(async (user) => {
      const faces = await v3("faceset/face/getlist", { user_id: user.user_id, group_id: user.group_id }).catch(
        () => null,
      );
      user.face_token = faces?.face_list[0]?.face_token;
    }),
  );
  return users;
}

function setUpSearch() {
  const form = $("#search-form");
  zones.search = dropZone($("[data-drop]", form), refreshButtons);
  $("#search-group").addEventListener("change", refreshButtons);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const group = $("#search-group").value;
    act(event.submitter, async () => {
      state.search = null;
      renderSearch();
      const photo = await preparePhoto(zones.search.file);
      let users = [];
      try {
        const result = await v3("search", {
          image: photo.base64,
          image_type: "BASE64",
          group_id_list: group,
          max_user_num: MAX_SEARCH_USERS,
          match_threshold: 0,
        });
        users = result.user_list;
      } catch (error) {
        // 222207: the group holds no one to compare with, which is an answer, not a failure.
        if (!(error instanceof ApiError && error.code === 222207)) throw error;
      }
      state.search = { group, users: await withPictures(users) };
      renderSearch();
    });
  });
}

/** One user found by a search: their picture, ID, group and info, and the score. */
function userRow(user, same) {
  const picture = user.face_token
    ? el("img", { src: faceUrl(user.face_token), alt: "", width: "56", height: "56" })
    : el("span", { class: "no-picture" });
  const details = el(
    "div",
    { class: "grow" },
    el("a", { href: userHref(user.group_id, user.user_id), class: "user-id", text: user.user_id }),
    el("span", { class: "muted", text: ` ${user.group_id}` }),
    user.user_info ? el("div", { class: "muted", text: user.user_info }) : "",
  );
  const score = el(
    "div",
    { class: `score-tag ${same ? "same" : ""}` },
    el("strong", { class: "score-value", text: user.score.toFixed(1) }),
    label(el("span"), same ? "search.match" : "search.candidate"),
  );
  return el("li", { class: same ? "match" : "candidate" }, picture, details, score);
}

function renderSearch() {
  const headline = $("#search-headline");
  const [matchesTitle, candidatesTitle] = [$("#search-matches-title"), $("#search-candidates-title")];
  const [matchList, candidateList] = [$("#search-results"), $("#search-candidates")];
  if (!state.search) {
    for (const element of [headline, matchesTitle, candidatesTitle]) element.hidden = true;
    matchList.replaceChildren();
    candidateList.replaceChildren();
    return;
  }
  const { group, users } = state.search;
  const limit = threshold();
  const matches = users.filter((user) => user.score >= limit);
  const candidates = users.filter((user) => user.score < limit);
  // The verdict first, in words: a best match, or nobody, never a list left to be read as one.
  headline.hidden = false;
  headline.classList.toggle("same", matches.length > 0);
  if (matches.length) {
    const best = matches[0];
    label(headline, "search.best", { user: best.user_id, score: best.score.toFixed(1), group });
  } else {
    label(headline, "search.nobody", { threshold: limit, group });
  }
  matchesTitle.hidden = matches.length === 0;
  label(matchesTitle, "search.matches", { threshold: limit });
  candidatesTitle.hidden = candidates.length === 0;
  label(candidatesTitle, "search.candidates", { threshold: limit });
  matchList.replaceChildren(...matches.map((user) => userRow(user, true)));
  candidateList.replaceChildren(...candidates.map((user) => userRow(user, false)));
}

// ---------------------------------------------------------------- bulk import

let signedInApp = null;

/** The app the token acts for ({app_id, name}), read once per sign-in. */
async function currentApp() {
  signedInApp ??= await consoleApi("app");
  return signedInApp;
}

async function loadImport(group, current) {
  const groups = await v3("faceset/group/getlist", { start: 0, length: PAGE });
  if (current !== generation) return;
  state.groups = groups.group_id_list;
  const select = $("#import-group");
  const chosen = group || select.value || state.group;
  select.disabled = Boolean(state.import?.running);
  select.replaceChildren(...state.groups.map((name) => el("option", { value: name, text: name })));
  if (state.groups.includes(chosen)) select.value = chosen;
  $("#import-nogroups").hidden = state.groups.length > 0;
  refreshImport();
}

/**
 * What `renlian import` would enrol from these paths ({path, read}), by its rules: `<user_id>/<photo>`
 * under the chosen folder (a zip's single top folder counts as that folder), photos by suffix, in
 * the order of the user IDs and then the names. Everything else is listed as ignored, with why.
 */
function importPlan(files, stripTop) {
  const photos = [];
  const ignored = [];
  const parts = (file) => file.path.split("/").filter(Boolean);
  const kept = files.filter((file) => {
    // macOS zips carry a copy of every file's metadata under __MACOSX/: never photos.
    const skip = parts(file)[0] === "__MACOSX" || parts(file).at(-1).startsWith("._");
    if (skip) ignored.push({ path: file.path, reason: "import.ignored.metadata" });
    return !skip;
  });
  const tops = new Set(kept.map((file) => parts(file)[0]));
  const top = stripTop || (tops.size === 1 && kept.some((file) => parts(file).length > 2));
  for (const file of kept) {
    const path = top ? parts(file).slice(1) : parts(file);
    const name = path.at(-1) || "";
    const suffix = name.includes(".") ? name.slice(name.lastIndexOf(".")).toLowerCase() : "";
    if (path.length !== 2) {
      ignored.push({ path: file.path, reason: path.length < 2 ? "import.ignored.loose" : "import.ignored.deep" });
    } else if (!PHOTO_SUFFIXES.includes(suffix)) {
      ignored.push({ path: file.path, reason: "import.ignored.suffix" });
    } else {
      photos.push({ uid: path[0], name, path: file.path, read: file.read });
    }
  }
  photos.sort((a, b) => (a.uid === b.uid ? (a.name < b.name ? -1 : 1) : a.uid < b.uid ? -1 : 1));
  return { photos, ignored };
}

function chooseImport(source) {
  const plan = importPlan(source.files, source.stripTop);
  state.import = { ...plan, key: source.key, name: source.name, results: new Map(), running: false };
  renderImport();
}

function refreshImport() {
  const run = state.import;
  $("#import-start").disabled = !run || run.running || !run.photos.length || !$("#import-group").value;
}

function resumeKey(appId, group) {
  return `${IMPORT_KEY}:${appId}:${group}:${state.import.key}`;
}

/** Enrols one photo of the plan; what happened to it: {outcome: enrolled|skipped|failed, code, reason}. */
async function importOne(item, group, controls) {
  if (!USER_ID.test(item.uid) || new TextEncoder().encode(item.uid).length > MAX_USER_ID_BYTES) {
    // The code and message the server gives a malformed user_id (worded with the rule), without
    // sending the photo.
    return { outcome: "failed", error: new ApiError(222018, "param[user_id] format error") };
  }
  try {
    const photo = await preparePhoto(await item.read());
    await v3("faceset/user/add", {
      image: photo.base64,
      image_type: "BASE64",
      group_id: group,
      user_id: item.uid,
      // renlian import's: the user's info is their ID.
      user_info: item.uid,
      ...controls,
    });
    return { outcome: "enrolled" };
  } catch (error) {
    // 223105: this photo is in the group already (an earlier run, or another user's).
    if (error instanceof ApiError && error.code === 223105) return { outcome: "skipped" };
    if (error instanceof TypeError) throw error; // the server is unreachable: stop, resumable
    return { outcome: "failed", error };
  }
}

async function runImport() {
  const run = state.import;
  const group = $("#import-group").value;
  const controls = controlsOf($("#import-form"));
  const key = resumeKey((await currentApp()).app_id, group);
  const finished = new Set(JSON.parse(localStorage.getItem(key) || "[]"));
  // A photo finished by an earlier run is not sent again; failures are tried again.
  for (const item of run.photos) if (finished.has(item.path)) run.results.set(item.path, { outcome: "resumed" });
  for (const item of run.photos) if (run.results.get(item.path)?.outcome === "failed") run.results.delete(item.path);
  const queue = run.photos.filter((item) => !run.results.has(item.path));
  Object.assign(run, { running: true, stopping: false, group });
  renderImport();
  const worker = async () => {
    while (queue.length && !run.stopping) {
      const item = queue.shift();
      const result = await importOne(item, group, controls);
      run.results.set(item.path, result);
      if (result.outcome !== "failed") {
        finished.add(item.path);
        localStorage.setItem(key, JSON.stringify([...finished]));
      }
      renderImport();
    }
  };
  try {
    await Promise.all(Array.from({ length: IMPORT_WORKERS }, worker));
  } catch (error) {
    notify(errorText(error), "error");
  } finally {
    run.running = false;
    // Everything in: nothing to resume. Failures keep the record, so a second run retries only them.
    const failed = [...run.results.values()].some((result) => result.outcome === "failed");
    if (run.results.size === run.photos.length && !failed) localStorage.removeItem(key);
    renderImport();
  }
}

function renderImport() {
  const run = state.import;
  const chosen = $("#import-chosen");
  const progress = $("#import-progress");
  const status = $("#import-status");
  const report = $("#import-report");
  const ignoredBox = $("#import-ignored");
  $("#import-stop").hidden = !run?.running;
  $("#import-group").disabled = Boolean(run?.running);
  for (const input of $$("#import-zip, #import-folder")) input.disabled = Boolean(run?.running);
  refreshImport();
  if (!run) {
    for (const element of [progress, report, ignoredBox]) element.hidden = true;
    chosen.textContent = "";
    return;
  }
  const users = new Set(run.photos.map((item) => item.uid)).size;
  label(chosen, "import.chosen", { name: run.name, photos: run.photos.length, users, ignored: run.ignored.length });
  const counts = { enrolled: 0, skipped: 0, failed: 0, resumed: 0 };
  for (const result of run.results.values()) counts[result.outcome] += 1;
  progress.hidden = run.results.size === 0 && !run.running;
  progress.max = Math.max(1, run.photos.length);
  progress.value = run.results.size;
  status.hidden = progress.hidden;
  status.classList.remove("error");
  let key = run.running ? (run.stopping ? "import.stopping" : "import.running") : "import.done";
  if (!run.running && run.results.size < run.photos.length) key = "import.stopped";
  else if (key === "import.done" && counts.resumed) key = "import.done.resumed";
  label(status, key, { done: run.results.size, total: run.photos.length, ...counts });
  const failures = run.photos.filter((item) => run.results.get(item.path)?.outcome === "failed");
  report.hidden = failures.length === 0;
  $("tbody", report).replaceChildren(
    ...failures.map((item) => {
      // Worded at each drawing, so that a language switch translates the report too.
      const { error } = run.results.get(item.path);
      const [code, reason] = error instanceof ApiError ? [error.code, reasonText(error)] : ["", errorText(error)];
      return el("tr", {}, el("td", { text: item.path }), el("td", { class: "code", text: String(code) }), el("td", { text: reason }));
    }),
  );
  ignoredBox.hidden = run.ignored.length === 0;
  label($("#import-ignored-title"), "import.ignored", { n: run.ignored.length });
  $("ul", ignoredBox).replaceChildren(
    ...run.ignored.map((file) => el("li", {}, `${file.path}: `, label(el("span"), file.reason))),
  );
}

function setUpImport() {
  $("#import-zip").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (!file) return;
    const status = $("#import-status");
    let entries;
    try {
      entries = await zipEntries(file);
    } catch (error) {
      if (!(error instanceof ZipError)) throw error;
      state.import = null;
      renderImport();
      status.hidden = false;
      label(status, "import.bad_zip", { reason: error.message }).classList.add("error");
      return;
    }
    const files = entries.map((entry) => ({ path: entry.name, read: entry.read }));
    chooseImport({ files, key: `zip:${file.name}:${file.size}:${file.lastModified}`, name: file.name, stripTop: false });
  });
  $("#import-folder").addEventListener("change", (event) => {
    const picked = [...event.target.files];
    if (!picked.length) return;
    const files = picked.map((file) => ({ path: file.webkitRelativePath || file.name, read: async () => file }));
    const name = files[0].path.split("/")[0];
    const size = picked.reduce((sum, file) => sum + file.size, 0);
    // The picked folder is the import's folder: its own name is never a user's.
    chooseImport({ files, key: `folder:${name}:${picked.length}:${size}`, name, stripTop: true });
  });
  $("#import-group").addEventListener("change", refreshImport);
  $("#import-form").addEventListener("submit", (event) => {
    event.preventDefault();
    runImport();
  });
  $("#import-stop").addEventListener("click", () => {
    // The photos being sent finish; nothing else starts. Choosing the archive again resumes.
    state.import.stopping = true;
    renderImport();
  });
}

// ---------------------------------------------------------------- usage

/** Which app the page is signed in to, at the top of every view. */
async function showApp() {
  const app = await currentApp().catch(() => null);
  const shown = $("#app-name");
  shown.hidden = !app || !token;
  if (app) label(shown, "app.signed_in", { name: app.name, app_id: app.app_id });
}

async function loadUsage(current) {
  const usage = await consoleApi("usage");
  if (current !== generation) return;
  state.usage = usage;
  renderUsage();
}

/** A bar chart of `points` ({label, value, errors, title}), drawn with elements: no library. */
function bars(container, points) {
  const most = Math.max(1, ...points.map((point) => point.value));
  container.replaceChildren(
    ...points.map((point) => {
      const fill = el("span", { class: "fill" });
      fill.style.height = `${(100 * point.value) / most}%`;
      const errors = el("span", { class: "errors" });
      errors.style.height = `${(100 * (point.errors || 0)) / most}%`;
      const column = el("div", { class: "bar", title: point.title }, el("div", { class: "track" }, fill, errors));
      column.append(el("span", { class: "bar-label", text: point.label }));
      column.dataset.value = String(point.value);
      return column;
    }),
  );
}

function renderUsage() {
  const usage = state.usage;
  if (!usage) return;
  label($("#usage-app"), "usage.app", { name: usage.name, app_id: usage.app_id });
  const limit = (value) => (value === null ? t("usage.nolimit") : number(value));
  const today = usage.days.at(-1).calls;
  label($("#usage-limits"), "usage.limits", {
    today: number(today),
    daily: limit(usage.limits.daily),
    total: number(usage.total),
    total_limit: limit(usage.limits.total),
    qps: limit(usage.limits.qps),
  });
  const locale = lang === "zh" ? "zh-CN" : "en";
  bars(
    $("#usage-days"),
    usage.days.map(({ day, calls }, index) => ({
      // Today and each week back: fourteen dates would not fit a phone.
      label: (usage.days.length - 1 - index) % 7 === 0 ? day.slice(5) : "",
      value: calls,
      title: t("usage.day.title", { day, calls: number(calls) }),
    })),
  );
  // The last USAGE_HOURS hours, those without calls too, in the browser's time.
  const byHour = new Map(usage.hours.map((hour) => [new Date(hour.hour).getTime(), hour]));
  const now = Math.floor(Date.now() / 3_600_000) * 3_600_000;
  const hours = [];
  for (let back = USAGE_HOURS - 1; back >= 0; back -= 1) {
    const start = now - back * 3_600_000;
    const { calls = 0, errors = 0 } = byHour.get(start) || {};
    const time = new Date(start).toLocaleTimeString(locale, { hour: "2-digit", minute: "2-digit" });
    hours.push({ label: back % 6 === 0 ? time : "", value: calls, errors, title: t("usage.hour.title", { time, calls, errors }) });
  }
  bars($("#usage-hours"), hours);
  const since = new Date(usage.since).toLocaleString(locale);
  label($("#usage-hours-hint"), "usage.hours.hint", { since });
  $("#usage-apis-none").hidden = usage.apis.length > 0;
  $("#usage-apis").hidden = usage.apis.length === 0;
  $("#usage-apis tbody").replaceChildren(
    ...usage.apis.map((api) => {
      const codes = Object.entries(api.codes).map(([code, answers]) => {
        const known = STRINGS.en[`error.${code}`] ? t(`error.${code}`) : "";
        return el("span", { class: "code-count", title: known, text: `${code} × ${number(answers)}` });
      });
      return el(
        "tr",
        { class: api.errors ? "has-errors" : "" },
        el("td", { text: api.endpoint.replace("/rest/2.0/face/", "") }),
        el("td", { class: "number", text: number(api.calls) }),
        el("td", { class: "number", text: number(api.errors) }),
        el("td", {}, ...codes),
      );
    }),
  );
}

function setUpUsage() {
  $("#usage-refresh").addEventListener("click", (event) => act(event.target, () => loadUsage(generation)));
}

// ---------------------------------------------------------------- start

/**
 * The browser's own message for a field it refuses is in the browser's language: every field says
 * its rule (data-rule) in the page's language instead.
 */
function setUpValidation() {
  for (const input of $$("input")) {
    input.addEventListener("invalid", () => {
      const key = input.validity.valueMissing ? "rule.required" : input.dataset.rule || "rule.format";
      input.setCustomValidity(t(key));
    });
    input.addEventListener("input", () => input.setCustomValidity(""));
  }
}

function setUp() {
  $("#lang").addEventListener("click", () => {
    lang = lang === "zh" ? "en" : "zh";
    localStorage.setItem(LANG_KEY, lang);
    applyLanguage();
  });
  $("#signout").addEventListener("click", () => signOut(null));
  $("#signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.target;
    $("#signin-error").hidden = true;
    act(event.submitter, async () => {
      try {
        await signIn(form.elements.api_key.value.trim(), form.elements.secret_key.value);
      } finally {
        // The secret is not kept anywhere, not even in the form.
        form.elements.secret_key.value = "";
      }
      if (location.hash.startsWith("#/")) route();
      else location.hash = "#/library";
    });
  });
  for (const input of $$(".threshold")) {
    // One threshold for the search page and for detect's searches: the operator's, wherever set.
    input.addEventListener("input", () => {
      for (const other of $$(".threshold")) if (other !== input) other.value = input.value;
      renderSearch();
      renderDetect();
    });
  }
  for (const button of $$("#confirm button")) {
    button.addEventListener("click", () => $("#confirm").close(button.value));
  }
  setUpLibrary();
  setUpDetect();
  setUpCompare();
  setUpSearch();
  setUpImport();
  setUpUsage();
  setUpValidation();
  window.addEventListener("hashchange", route);
  applyLanguage();
  refreshButtons();
  route();
}

setUp();
