// The chat simulator's page script (/sim/). Names, titles and messages come from the roster
// and from what people typed: they only ever become text (textContent), never markup.
"use strict";

const $ = (id) => document.getElementById(id);
const ROLES = { teacher: "教师", school_lead: "学校负责人", district_admin: "区管理员" };
const CHIPS = ["签到", "进度", "反思 ", "续写 ", "请假 下次 ", "本校进度", "催交", "全区进度", "帮助"];
const BOT_MENTION = "@研修助手 ";
const TOO_BIG = "图片太大（超过 1 MB），请换一张小一点的图片。";
let people = [], convs = [], lastId = 0, me = null;

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
  restart();
}

function restart() { lastId = 0; $("log").replaceChildren(); poll(); }

function show(m) {
  const mine = !m.from_bot && me && m.sender === me.name;
  const el = node("div", "msg " + (m.from_bot ? "bot" : (mine ? "me" : "")));
  const inner = node("div");
  inner.append(node("div", "who", m.sender), node("div", "bubble", m.text));
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

$("chips").replaceChildren(...CHIPS.map(c => {
  const b = node("button", "", c);
  b.type = "button";
  b.addEventListener("click", () => chipClicked(c));
  return b;
}));
$("send").addEventListener("click", sendTyped);
$("text").addEventListener("keydown", e => { if (e.key === "Enter") sendTyped(); });
$("who").addEventListener("change", fillConvs);
$("conv").addEventListener("change", restart);
$("file").addEventListener("change", sendFile);
load();
setInterval(poll, 1500);
