// The Vartalap chat page: one WebSocket, plain DOM, no dependencies.
//
// Delivery is at least once, so the page keeps two pieces of state that make
// it exactly once for the user: an outbox of envelopes the server has not
// accepted yet (resent with the same client id after a reconnect, which the
// server answers without a second copy), and the set of server ids already
// shown (a pushed event may come again until our ack reaches the server).
"use strict";

const $ = (id) => document.getElementById(id);

const state = {
	token: "",
	me: "",
	device: "",
	ws: null,
	online: false,
	stopped: true,     // signed out, or told not to reconnect
	backoff: 0,        // failed connects in a row
	retryTimer: 0,
	outbox: new Map(), // client id -> envelope, until "accepted" or a final error
	seen: new Set(),   // server ids of events shown (dedupe)
	ownBySid: new Map(), // server id of own message -> message record
	ownByCid: new Map(), // client id of own message -> message record
	convs: new Map(),  // "bob" or "g:team" -> conversation
	active: "",
	ackQueue: [],
	typingSentAt: 0,
	typingTimers: new Map(),
	seq: 0,
};

const RETRYABLE = new Set(["busy", "rate_limited", "storage_error", "inbox_full",
	"storage_full", "internal", "conflict"]);

// ---- tokens and sign-in ----

function tokenClaims(token) {
	try {
		const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
		return JSON.parse(atob(part));
	} catch (e) {
		return null;
	}
}

function signIn(token) {
	const claims = tokenClaims(token);
	if (!claims || typeof claims.sub !== "string") {
		$("signin-error").textContent = "that does not look like a token";
		return;
	}
	state.token = token;
	state.me = claims.sub;
	state.device = claims.dev || "";
	state.stopped = false;
	sessionStorage.setItem("vartalap.token", token);
	$("signin").hidden = true;
	$("chat").hidden = false;
	$("me").textContent = state.me + (state.device ? " · " + state.device : "");
	loadGroups();
	connect();
}

// Signing out revokes the token on the server too, so a copy of it left in
// this browser (or taken from it) no longer opens this page's device. A
// token that names no device still opens other device ids (?device=): only
// a logout of every device ends it there, and that signs out the others.
async function signOut() {
	let r = null;
	try {
		r = await fetch("/v1/logout", {
			method: "POST",
			headers: { Authorization: "Bearer " + state.token },
		});
	} catch (e) {
		// Unreachable: r stays null.
	}
	// 401: the token was refused already (expired, revoked). Anything else
	// but 200 leaves it valid on the server: say so and stay signed in.
	if (!r || (!r.ok && r.status !== 401)) {
		const j = r ? await r.json().catch(() => ({})) : {};
		toast("not signed out: " + (j.reason || "the server cannot be reached") +
			"; try again");
		return;
	}
	state.stopped = true;
	clearTimeout(state.retryTimer);
	if (state.ws) {
		state.ws.close(1000);
	}
	sessionStorage.removeItem("vartalap.token");
	location.reload();
}

async function devSignIn(user, device) {
	let r;
	try {
		r = await fetch("/v1/dev/token", {
			method: "POST",
			headers: { "Content-Type": "application/json" },
			body: JSON.stringify({ user, device }),
		});
	} catch (e) {
		$("signin-error").textContent = "server unreachable";
		return;
	}
	if (r.status === 404) {
		$("signin-error").textContent = "this server does not run with --dev: paste a token";
		return;
	}
	const j = await r.json().catch(() => ({}));
	if (!r.ok || !j.token) {
		$("signin-error").textContent = j.reason || "sign-in refused (" + r.status + ")";
		return;
	}
	signIn(j.token);
}

// Groups we already belong to: the server keeps no history, but it knows these.
async function loadGroups() {
	try {
		const r = await fetch("/v1/groups", {
			headers: { Authorization: "Bearer " + state.token },
		});
		if (r.status === 401) {
			const j = await r.json().catch(() => ({}));
			tokenRefused(j.code);
			return;
		}
		if (!r.ok) {
			return;
		}
		const j = await r.json();
		for (const g of j.groups || []) {
			conv(g.id).title = g.name || g.id;
		}
		renderConvs();
	} catch (e) {
		// Offline: the group events will name them when they arrive.
	}
}

// The server no longer takes the token (expired, revoked by a sign-out):
// back to the sign-in form, and forget it, so a reload does not try it again.
// A fresh page, as after signing out: the conversations of this user must not
// stay in memory for whoever signs in next. The reason outlives the reload.
function tokenRefused(code) {
	const why = {
		token_expired: "your token expired: sign in again",
		token_revoked: "signed out: sign in again",
	};
	state.stopped = true;
	clearTimeout(state.retryTimer);
	if (state.ws) {
		state.ws.close(1000);
		state.ws = null;
	}
	sessionStorage.removeItem("vartalap.token");
	sessionStorage.setItem("vartalap.refused",
		why[code] || "the server refused the token: sign in again");
	location.reload();
}

// ---- the connection ----

function setConn(text, online) {
	const el = $("conn");
	el.textContent = text;
	el.classList.toggle("online", online);
}

function connect() {
	if (state.stopped) {
		return;
	}
	const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/v1/ws";
	// Browsers cannot set headers on a WebSocket: the token rides in the subprotocol list.
	const ws = new WebSocket(url, ["vartalap.v1", "bearer." + state.token]);
	state.ws = ws;
	setConn("connecting", false);
	ws.onopen = () => {
		state.online = true;
		state.backoff = 0;
		setConn("online", true);
		// Same client ids as before: the server answers each once, delivers once.
		for (const env of state.outbox.values()) {
			ws.send(JSON.stringify(env));
		}
		flushAcks();
		sendVisibleReads();
	};
	ws.onmessage = (ev) => {
		let e;
		try {
			e = JSON.parse(ev.data);
		} catch (err) {
			return;
		}
		onEvent(e);
	};
	ws.onclose = (ev) => onClose(ws, ev.code);
}

function onClose(ws, code) {
	if (state.ws !== ws) {
		return;
	}
	state.ws = null;
	state.online = false;
	if (code === 4002) {
		state.stopped = true;
		setConn("signed in elsewhere", false);
		return;
	}
	if (code === 4001 || code === 4003) {
		// As a refused token over REST: the sign-in form, and no more of
		// the conversation on a page whose user logged out (a lost phone).
		tokenRefused(code === 4001 ? "token_expired" : "token_revoked");
		return;
	}
	if (code === 1008) {
		state.stopped = true;
		setConn("refused", false);
		toast("sign in again");
		return;
	}
	if (code === 1006) {
		// A refused handshake reaches a page as a bare 1006: ask over REST
		// whether it was the token, rather than retrying it forever.
		loadGroups();
	}
	if (state.stopped) {
		setConn("offline", false);
		return;
	}
	// Exponential backoff with jitter, so a restarted server is not stampeded.
	const delay = Math.min(15000, 500 * 2 ** state.backoff) * (0.5 + Math.random() / 2);
	state.backoff = Math.min(state.backoff + 1, 5);
	setConn("offline, retrying", false);
	state.retryTimer = setTimeout(connect, delay);
}

function send(env) {
	if (state.ws && state.online) {
		state.ws.send(JSON.stringify(env));
	}
}

// Envelopes that need "accepted": kept in the outbox until the server took them.
function sendReliable(env) {
	state.outbox.set(env.id, env);
	send(env);
}

function newCid(kind) {
	state.seq += 1;
	return kind + "-" + Date.now().toString(36) + "-" + state.seq + "-" +
		Math.random().toString(36).slice(2, 8);
}

function ack(id) {
	state.ackQueue.push(id);
	if (state.ackQueue.length === 1) {
		queueMicrotask(flushAcks);
	}
}

function flushAcks() {
	while (state.ackQueue.length > 0 && state.online) {
		send({ v: 1, type: "ack", ids: state.ackQueue.splice(0, 256) });
	}
}

// ---- incoming events ----

function onEvent(e) {
	switch (e.type) {
	case "accepted":
		onAccepted(e);
		return;
	case "error":
		onError(e);
		return;
	case "typing":
		onTyping(e);
		return;
	case "message":
	case "delivered":
	case "read":
	case "group":
		break;
	default:
		return;
	}
	// Owed events: ack every copy, act on the first.
	ack(e.id);
	if (state.seen.has(e.id)) {
		return;
	}
	state.seen.add(e.id);
	if (e.type === "message") {
		onMessage(e);
	} else if (e.type === "delivered") {
		// One receipt names every message a device acked at about the same time.
		const refs = e.body && Array.isArray(e.body.refs) ? e.body.refs : [];
		for (const r of refs) {
			mark(state.ownBySid.get(r && r.ref), "delivered");
		}
	} else if (e.type === "read") {
		for (const sid of (e.body && e.body.ids) || []) {
			mark(state.ownBySid.get(sid), "read");
		}
	} else {
		onGroup(e);
	}
}

function onAccepted(e) {
	const env = state.outbox.get(e.ref);
	state.outbox.delete(e.ref);
	const m = state.ownByCid.get(e.ref);
	if (env && m && env.type === "message") {
		m.sid = e.id;
		m.ts = e.ts;
		state.ownBySid.set(e.id, m);
		mark(m, "accepted");
	} else if (env && env.type === "group_create") {
		conv(env.to).title = env.body.name || env.to;
		renderConvs();
	}
}

function onError(e) {
	if (!e.ref || !state.outbox.has(e.ref)) {
		if (e.code !== "unknown_id") {
			toast(e.code + ": " + (e.reason || ""));
		}
		return;
	}
	if (RETRYABLE.has(e.code)) {
		// Stays in the outbox: resent on the next connect, or in a while.
		setTimeout(() => state.outbox.has(e.ref) && send(state.outbox.get(e.ref)), 3000);
		return;
	}
	state.outbox.delete(e.ref);
	const m = state.ownByCid.get(e.ref);
	if (m) {
		m.failed = e.code;
		renderMsg(m);
	}
	toast(e.code + ": " + (e.reason || ""));
}

// Which conversation an event belongs to, seen from this user.
function convKey(e) {
	if (e.to && e.to.startsWith("g:")) {
		return e.to;
	}
	return e.from === state.me ? e.to : e.from;
}

function onMessage(e) {
	const own = e.from === state.me;
	const m = {
		key: convKey(e), cid: e.cid, sid: e.id, from: e.from, body: e.body, ts: e.ts,
		own, status: own ? "accepted" : "", readSent: false, el: null,
	};
	if (own) {
		// Sent from another device of ours: receipts will name it by server id.
		state.ownBySid.set(e.id, m);
	}
	const c = conv(m.key);
	c.msgs.push(m);
	if (m.key !== state.active) {
		c.unread += own ? 0 : 1;
	}
	stopTyping(m.key, e.from);
	renderConvs();
	if (m.key === state.active) {
		appendMsg(m);
	}
}

function onGroup(e) {
	const b = e.body || {};
	const g = b.group || {};
	const c = conv(e.to);
	if (g.name) {
		c.title = g.name;
	}
	const what = b.op === "create" ? "created the group" : b.op === "leave" ? "left"
		: "changed the group";
	const m = { key: e.to, note: (b.by || e.from) + " " + what, el: null };
	c.msgs.push(m);
	renderConvs();
	if (e.to === state.active) {
		appendMsg(m);
	}
}

function onTyping(e) {
	const key = convKey(e);
	if (e.from === state.me) {
		return;
	}
	const timers = state.typingTimers;
	const id = key + "\n" + e.from;
	clearTimeout(timers.get(id));
	timers.set(id, setTimeout(() => stopTyping(key, e.from), 4000));
	renderTyping();
}

function stopTyping(key, from) {
	const id = key + "\n" + from;
	if (state.typingTimers.has(id)) {
		clearTimeout(state.typingTimers.get(id));
		state.typingTimers.delete(id);
		renderTyping();
	}
}

// A receipt only moves a mark forward: a late "delivered" never hides "read".
const RANK = { "": 0, pending: 0, accepted: 1, delivered: 2, read: 3 };

function mark(m, status) {
	if (!m || RANK[status] <= RANK[m.status]) {
		return;
	}
	m.status = status;
	renderMsg(m);
}

// ---- outgoing ----

function sendText(text) {
	const key = state.active;
	const cid = newCid("w");
	const m = {
		key, cid, sid: "", from: state.me, body: { text }, ts: Date.now(),
		own: true, status: "pending", el: null,
	};
	state.ownByCid.set(cid, m);
	// The next keystroke starts a new message: say so at once.
	state.typingSentAt = 0;
	conv(key).msgs.push(m);
	appendMsg(m);
	sendReliable({ v: 1, type: "message", id: cid, to: key, body: { text } });
}

function createGroup(id, name, members) {
	const cid = newCid("g");
	conv(id).title = name || id;
	sendReliable({ v: 1, type: "group_create", id: cid, to: id, body: { name, members } });
	openConv(id);
}

function sendTyping() {
	const now = Date.now();
	if (!state.active || now - state.typingSentAt < 2500) {
		return;
	}
	state.typingSentAt = now;
	send({ v: 1, type: "typing", to: state.active });
}

// Read receipts go to each sender, for the messages the user could see.
function sendReads(msgs) {
	const bySender = new Map();
	for (const m of msgs) {
		if (m.own || m.readSent || !m.sid) {
			continue;
		}
		m.readSent = true;
		if (!bySender.has(m.from)) {
			bySender.set(m.from, []);
		}
		bySender.get(m.from).push(m.sid);
	}
	for (const [from, ids] of bySender) {
		for (let i = 0; i < ids.length; i += 256) {
			sendReliable({ v: 1, type: "read", id: newCid("r"), to: from,
				ids: ids.slice(i, i + 256) });
		}
	}
}

function sendVisibleReads() {
	if (document.visibilityState !== "visible" || !state.active) {
		return;
	}
	const box = $("msgs").getBoundingClientRect();
	const shown = conv(state.active).msgs.filter((m) => {
		if (!m.el || m.own || m.note) {
			return false;
		}
		const r = m.el.getBoundingClientRect();
		return r.bottom > box.top && r.top < box.bottom;
	});
	sendReads(shown);
}

// ---- rendering ----

function conv(key) {
	let c = state.convs.get(key);
	if (!c) {
		c = { key, title: key, msgs: [], unread: 0 };
		state.convs.set(key, c);
	}
	return c;
}

function renderConvs() {
	const ul = $("convs");
	ul.textContent = "";
	for (const c of state.convs.values()) {
		const li = document.createElement("li");
		li.dataset.key = c.key;
		li.className = c.key === state.active ? "active" : "";
		const name = document.createElement("span");
		name.textContent = c.title === c.key ? c.key : c.title + " (" + c.key + ")";
		li.append(name);
		if (c.unread > 0) {
			const n = document.createElement("span");
			n.className = "unread";
			n.textContent = String(c.unread);
			li.append(n);
		}
		li.onclick = () => openConv(c.key);
		ul.append(li);
	}
}

function openConv(key) {
	state.active = key;
	const c = conv(key);
	c.unread = 0;
	$("peer").textContent = c.title === key ? key : c.title + " · " + key;
	$("text").disabled = false;
	$("send").disabled = false;
	$("msgs").textContent = "";
	for (const m of c.msgs) {
		m.el = null;
		appendMsg(m);
	}
	renderConvs();
	renderTyping();
	$("text").focus();
}

function bodyText(body) {
	if (typeof body === "string") {
		return body;
	}
	if (body && typeof body.text === "string") {
		return body.text;
	}
	return JSON.stringify(body);
}

function appendMsg(m) {
	const li = document.createElement("li");
	m.el = li;
	$("msgs").append(li);
	renderMsg(m);
	li.scrollIntoView({ block: "end" });
	sendVisibleReads();
}

function renderMsg(m) {
	const li = m.el;
	if (!li) {
		return;
	}
	li.textContent = "";
	if (m.note) {
		li.className = "msg note";
		li.textContent = m.note;
		return;
	}
	li.className = "msg" + (m.own ? " own" : "") + (m.failed ? " failed" : "");
	li.dataset.cid = m.cid || "";
	li.dataset.status = m.status || "";
	if (!m.own && m.key.startsWith("g:")) {
		const who = document.createElement("div");
		who.className = "who";
		who.textContent = m.from;
		li.append(who);
	}
	const text = document.createElement("div");
	text.className = "text";
	text.textContent = bodyText(m.body);
	li.append(text);
	const meta = document.createElement("div");
	meta.className = "meta";
	meta.textContent = new Date(m.ts || Date.now()).toLocaleTimeString([],
		{ hour: "2-digit", minute: "2-digit" });
	if (m.own) {
		const mk = document.createElement("span");
		mk.className = "mark " + (m.status || "");
		mk.textContent = m.failed ? " ✗ " + m.failed
			: m.status === "read" ? "✓✓" : m.status === "delivered" ? "✓"
				: m.status === "accepted" ? "·" : "…";
		mk.title = m.failed || m.status;
		meta.append(mk);
	}
	li.append(meta);
}

function renderTyping() {
	const names = [];
	for (const id of state.typingTimers.keys()) {
		const [key, from] = id.split("\n");
		if (key === state.active) {
			names.push(from);
		}
	}
	$("typing").textContent = names.length ? names.join(", ") + " typing…" : "";
}

let toastTimer = 0;
function toast(text) {
	const t = $("toast");
	t.textContent = text;
	t.classList.add("show");
	clearTimeout(toastTimer);
	toastTimer = setTimeout(() => t.classList.remove("show"), 4000);
}

// ---- wiring ----

function words(s) {
	return s.split(/[\s,]+/).filter(Boolean);
}

function wire() {
	$("token-form").onsubmit = (ev) => {
		ev.preventDefault();
		signIn($("token-input").value.trim());
	};
	$("dev-form").onsubmit = (ev) => {
		ev.preventDefault();
		devSignIn($("dev-user").value.trim(), $("dev-device").value.trim());
	};
	$("signout").onclick = signOut;
	$("open-form").onsubmit = (ev) => {
		ev.preventDefault();
		const key = $("open-input").value.trim();
		if (key) {
			$("open-input").value = "";
			openConv(key);
		}
	};
	$("group-form").onsubmit = (ev) => {
		ev.preventDefault();
		createGroup($("group-id").value.trim(), $("group-name").value.trim(),
			words($("group-members").value));
		$("group-form").reset();
		$("group-box").open = false;
	};
	$("send-form").onsubmit = (ev) => {
		ev.preventDefault();
		const text = $("text").value;
		if (text.trim() && state.active) {
			$("text").value = "";
			sendText(text);
		}
	};
	$("text").oninput = sendTyping;
	$("msgs").addEventListener("scroll", sendVisibleReads);
	document.addEventListener("visibilitychange", sendVisibleReads);
	window.addEventListener("focus", sendVisibleReads);
	const refused = sessionStorage.getItem("vartalap.refused");
	if (refused) {
		sessionStorage.removeItem("vartalap.refused");
		$("signin-error").textContent = refused;
	}
	const saved = sessionStorage.getItem("vartalap.token");
	if (saved) {
		signIn(saved);
	}
}

wire();
