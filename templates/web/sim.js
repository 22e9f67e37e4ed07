// The chat simulator's page script (/sim/). Names, titles and messages come from the roster
// and from what people typed: they only ever become text (textContent), never markup. A link
// in the bot's reply becomes an <a> built node by node, and only for an http(s) URL.
"use strict";

const $ = (id) => document.getElementById(id);
const ROLES = { teacher: "教师", school_lead: "学校负责人", district_admin: "区管理员" };
const MEMBERS = ["teacher", "school_lead"];  // on a school's roster: their 签到 and 反思 count
const LEADS = ["school_lead", "district_admin"];
// the quick replies each role may use (a chip ending in a space waits for the rest to be typed)
const CHIPS = [
  ["签到", MEMBERS], ["进度", MEMBERS], ["反思 ", MEMBERS], ["续写 ", MEMBERS], ["请假 下次 ", MEMBERS],
  ["本校进度", ["school_lead"]], ["催交", ["school_lead"]], ["全区进度", ["district_admin"]],
  ["广播 ", ["district_admin"]], ["后台", LEADS], ["帮助", [...MEMBERS, "district_admin"]],
];
const URL_IN_TEXT = /https?:\/\/[^\s<>"'，。；、（）「」]+/g;
const BOT_MENTION = "@研修助手 ";
const TOO_BIG = "图片太大（超过 1 MB），请换一张小一点的图片。";
let people = [], convs = [], lastId = 0, me = null, links = null;

// an element with a class and a text, built without parsing any markup
function node(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

function option(value, label) {
  const o = node("option", "", label);
  o.value = value;
  return o;
}

async function load() {
  const r = await fetch("api/people");
  const d = await r.json();
  people = d.people; convs = d.conversations;
  links = d.links ? new URL(d.links).href : null;  // as the browser spells it, to compare
  $("who").replaceChildren(...people.map(p =>
    option(String(p.id), `${p.name} · ${p.school} · ${ROLES[p.role] || p.role}`)));
  const saved = localStorage.getItem("sim-who");
  if (saved && people.some(p => String(p.id) === saved)) $("who").value = saved;
  fillConvs();
}

function fillConvs() {
  me = people.find(p => String(p.id) === $("who").value) || null;
  if (!me) return;
  const opts = convs.map(c => option(c.id, c.title));
  opts.push(option(`sim-dm-${me.id}`, "与研修助手私聊"));
  $("conv").replaceChildren(...opts);
  const own = convs.find(c => c.school_code === me.school_code);
  if (own) $("conv").value = own.id;
  localStorage.setItem("sim-who", String(me.id));
  fillChips();
  restart();
}

function restart() { lastId = 0; $("log").replaceChildren(); poll(); }

// the URL itself when it is an http(s) link into the dashboard, else null: a javascript: or
// data: URL never links, nor an address a reply merely quotes from what someone typed
function webUrl(raw) {
  try {
    const url = new URL(raw);
    if (url.protocol !== "http:" && url.protocol !== "https:") return null;
    return links && url.href.startsWith(links) ? url.href : null;
  } catch (e) {
    return null;
  }
}

// a bubble's text with each dashboard URL as a link that opens in a new tab
function withLinks(bubble, text) {
  let from = 0;
  for (const found of text.matchAll(URL_IN_TEXT)) {
    const href = webUrl(found[0]);
    if (!href) continue;
    const a = node("a", "link", found[0]);
    a.href = href;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    bubble.append(document.createTextNode(text.slice(from, found.index)), a);
    from = found.index + found[0].length;
  }
  bubble.append(document.createTextNode(text.slice(from)));
  return bubble;
}

function show(m) {
  const mine = !m.from_bot && me && m.sender === me.name;
  const el = node("div", "msg " + (m.from_bot ? "bot" : (mine ? "me" : "")));
  const inner = node("div");
  // only the bot's own replies carry links; what a person typed stays plain text
  const bubble = m.from_bot ? withLinks(node("div", "bubble"), m.text) : node("div", "bubble", m.text);
  inner.append(node("div", "who", m.sender), bubble);
  el.append(inner);
  $("log").append(el);
  $("log").scrollTop = $("log").scrollHeight;
}

async function poll() {
  const conv = $("conv").value;
  if (!conv) return;
  const r = await fetch(`api/messages?conversation_id=${encodeURIComponent(conv)}&after=${lastId}`);
  const d = await r.json();
  if (conv !== $("conv").value) return;
  for (const m of d.messages) {
    if (m.id <= lastId) continue;  // an overlapping poll already showed it
    lastId = m.id; show(m);
  }
}

async function send(text, image) {
  if (!me) return;
  const conv = $("conv").value;
  if (image && image.length > 1000000) { alert(TOO_BIG); return; }
  if (conv.startsWith("sim-group-") && text && !text.includes("@")) text = BOT_MENTION + text;
  const msgId = crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random();
  await fetch("api/send", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ person_id: me.id, conversation_id: conv, text, image, msg_id: msgId }),
  });
  await poll();
}

function sendTyped() {
  const t = $("text").value.trim();
  if (t) { $("text").value = ""; send(t); }
}

// phone photos are several MB: shrink them in the page (as the chat apps do) to stay under 1 MiB
async function shrink(file) {
  const bitmap = await createImageBitmap(file);
  const scale = Math.min(1, 1600 / Math.max(bitmap.width, bitmap.height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(bitmap.width * scale); canvas.height = Math.round(bitmap.height * scale);
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  const blob = await new Promise(ok => canvas.toBlob(ok, "image/jpeg", 0.85));
  return new Uint8Array(await blob.arrayBuffer());
}

async function sendFile() {
  const f = $("file").files[0];
  if (!f) return;
  let bytes = new Uint8Array(await f.arrayBuffer());
  if (bytes.length > 700 * 1024) { try { bytes = await shrink(f); } catch (e) { /* send as is: the bot explains */ } }
  let s = "";
  for (let i = 0; i < bytes.length; i += 8192) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 8192));
  await send($("text").value.trim(), btoa(s));
  $("text").value = ""; $("file").value = "";
}

function chipClicked(c) {
  if (c.endsWith(" ")) { $("text").value = c; $("text").focus(); } else send(c);
}

// the chips of the chosen person's role: a teacher sees none of the leads' commands
function fillChips() {
  const role = me ? me.role : "teacher";
  $("chips").replaceChildren(...CHIPS.filter(([, roles]) => roles.includes(role)).map(([c]) => {
    const b = node("button", "", c);
    b.type = "button";
    b.addEventListener("click", () => chipClicked(c));
    return b;
  }));
}

$("send").addEventListener("click", sendTyped);
$("text").addEventListener("keydown", e => { if (e.key === "Enter") sendTyped(); });
$("who").addEventListener("change", fillConvs);
$("conv").addEventListener("change", restart);
$("file").addEventListener("change", sendFile);
load();
setInterval(poll, 1500);
