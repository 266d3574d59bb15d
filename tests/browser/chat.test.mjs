// Two people chat through the page: alice and bob sign in (dev sign-in), alice
// sends, bob's page shows it, alice's page shows delivered (✓) while bob
// looks elsewhere and read (✓✓) once bob opens the chat; then typing and a
// reply the other way. Screenshots of both pages go to $SCREENSHOT_DIR
// (docs/screenshots/ when unset, which refreshes the README's pictures).
// Last, alice writes three messages to dave, whose only device acks them in
// one ack: the receipt that names them marks each of them.
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, "..", "..");
const SHOTS = process.env.SCREENSHOT_DIR || join(ROOT, "docs", "screenshots");
const TIMEOUT = 10000;

const tmp = mkdtempSync(join(tmpdir(), "vartalap-browser-"));
let server = null;
let browser = null;
const received = new Map(); // user -> text frames their page's socket received

async function startServer() {
	const portFile = join(tmp, "port");
	server = spawn(process.env.VARTALAPD, [
		"--dev", "--storage", "memory", "--data-dir", tmp,
		"--listen", "127.0.0.1:0", "--port-file", portFile,
		"--web-root", join(ROOT, "web"), "--log-level", "warn",
	], { stdio: ["ignore", "inherit", "inherit"] });
	server.on("exit", (code, sig) => {
		if (server) {
			console.error(`vartalapd exited early: ${code ?? sig}`);
		}
	});
	const until = Date.now() + TIMEOUT;
	while (Date.now() < until) {
		if (existsSync(portFile)) {
			const port = readFileSync(portFile, "utf8").trim();
			if (port) {
				return `http://127.0.0.1:${port}/`;
			}
		}
		await new Promise((r) => setTimeout(r, 50));
	}
	throw new Error("vartalapd did not write its port file");
}

async function signIn(url, user) {
	const context = await browser.newContext({ viewport: { width: 860, height: 520 } });
	const page = await context.newPage();
	page.on("pageerror", (e) => console.error(`[${user}] page error: ${e.message}`));
	const frames = [];
	received.set(user, frames);
	page.on("websocket", (ws) => ws.on("framereceived", (f) => frames.push(f.payload)));
	await page.goto(url);
	await page.fill("#dev-user", user);
	await page.click("#dev-form button");
	await page.waitForSelector("#conn.online", { timeout: TIMEOUT });
	return page;
}

// A device without the page: a bare WebSocket opened from a blank page of the
// server's origin, which keeps what it receives in window.raw.got.
async function rawDevice(url, user, device) {
	const context = await browser.newContext();
	const page = await context.newPage();
	await page.goto(url + "healthz");
	await page.evaluate(async ({ user, device }) => {
		const r = await fetch("/v1/dev/token", {
			method: "POST",
			headers: { "Content-Type": "application/json" },
			body: JSON.stringify({ user, device }),
		});
		const { token } = await r.json();
		const ws = new WebSocket("ws://" + location.host + "/v1/ws",
			["vartalap.v1", "bearer." + token]);
		window.raw = { ws, got: [] };
		ws.onmessage = (ev) => window.raw.got.push(JSON.parse(ev.data));
		await new Promise((open, fail) => {
			ws.onopen = open;
			ws.onerror = () => fail(new Error("the raw device could not connect"));
		});
	}, { user, device });
	return page;
}

async function receiptForThree(url, alice) {
	const dave = await rawDevice(url, "dave", "raw");
	await alice.fill("#open-input", "dave");
	await alice.press("#open-input", "Enter");
	for (const text of ["one", "two", "three"]) {
		await alice.type("#text", text);
		await alice.press("#text", "Enter");
	}
	await dave.waitForFunction(() => window.raw.got.filter((e) => e.type === "message")
		.length === 3, null, { timeout: TIMEOUT });
	const ids = await dave.evaluate(() => {
		const ids = window.raw.got.filter((e) => e.type === "message").map((e) => e.id);
		window.raw.ws.send(JSON.stringify({ v: 1, type: "ack", ids }));
		return ids;
	});
	const marked = '#msgs .msg.own[data-status="delivered"]';
	await alice.waitForFunction((sel) => document.querySelectorAll(sel).length === 3, marked,
		{ timeout: TIMEOUT });
	// The protocol promises no grouping, but one ack taken in one loop turn
	// ends as one receipt: the page must have marked refs beyond the first.
	const named = received.get("alice").map((f) => JSON.parse(f))
		.filter((e) => e.type === "delivered" && e.from === "dave")
		.map((e) => (e.body.refs || []).map((r) => r.ref));
	check(named.flat().sort().join(",") === [...ids].sort().join(",") &&
		named.some((refs) => refs.length > 1),
		`receipts name the three, several in one: got ${JSON.stringify(named)} for ${ids}`);
	console.log("ok: a receipt naming several messages marks each delivered");
}

function check(cond, what) {
	if (!cond) {
		throw new Error(what);
	}
}

async function run() {
	const url = await startServer();
	browser = await chromium.launch({
		executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
		headless: true,
		args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync"],
	});
	const alice = await signIn(url, "alice");
	const bob = await signIn(url, "bob");

	await alice.fill("#open-input", "bob");
	await alice.press("#open-input", "Enter");
	await alice.type("#text", "hello bob");
	await alice.press("#text", "Enter");

	// Bob has not opened the chat: it waits as unread, acked but not read.
	await bob.waitForSelector('#convs li[data-key="alice"] .unread', { timeout: TIMEOUT });
	const own = '#msgs .msg.own[data-status="delivered"] .mark';
	await alice.waitForSelector(own, { timeout: TIMEOUT });
	check((await alice.textContent(own)) === "✓", "delivered mark is one tick");
	console.log("ok: delivered mark on alice's page");

	await bob.click('#convs li[data-key="alice"]');
	await bob.waitForSelector('#msgs .msg:not(.own) .text:text-is("hello bob")',
		{ timeout: TIMEOUT });
	console.log("ok: message on bob's page");
	const read = '#msgs .msg.own[data-status="read"] .mark';
	await alice.waitForSelector(read, { timeout: TIMEOUT });
	check((await alice.textContent(read)) === "✓✓", "read mark is two ticks");
	console.log("ok: read mark on alice's page");

	// Typing goes both ways; then a reply with the indicator still up on alice's side.
	await bob.type("#text", "hi alice, ");
	await alice.waitForSelector('#typing:text-is("bob typing…")', { timeout: TIMEOUT });
	console.log("ok: typing indicator on alice's page");
	await bob.type("#text", "got it");
	await bob.press("#text", "Enter");
	await alice.waitForSelector('#msgs .msg:not(.own) .text:text-is("hi alice, got it")',
		{ timeout: TIMEOUT });
	await bob.waitForSelector('#msgs .msg.own[data-status="read"]', { timeout: TIMEOUT });
	await alice.type("#text", "see you");
	await bob.waitForSelector('#typing:text-is("alice typing…")', { timeout: TIMEOUT });

	mkdirSync(SHOTS, { recursive: true });
	await alice.screenshot({ path: join(SHOTS, "chat-alice.png") });
	await bob.screenshot({ path: join(SHOTS, "chat-bob.png") });
	console.log(`ok: screenshots in ${SHOTS}`);

	await receiptForThree(url, alice);
	await signOutRevokes(url, bob, alice);
}

// Sign out revokes the token on the server: a copy of it opens nothing after.
async function signOutRevokes(url, page, other) {
	const token = await page.evaluate(() => sessionStorage.getItem("vartalap.token"));
	check(token, "the page keeps its token while signed in");
	await page.click("#signout");
	await page.waitForSelector("#signin:not([hidden])", { timeout: TIMEOUT });
	const res = await other.evaluate(async (t) => {
		const r = await fetch("/v1/messages", { headers: { Authorization: "Bearer " + t } });
		return { status: r.status, body: await r.json() };
	}, token);
	check(res.status === 401 && res.body.code === "token_revoked",
		`signed-out token refused: ${JSON.stringify(res)}`);
	console.log("ok: sign out revokes the token");

	// A logout from elsewhere closes the other page with 4003: it goes back
	// to the sign-in form at once, the conversation no longer shown (a lost
	// phone's page), and forgets the revoked token.
	// From outside the page: the page reloads as the 4003 close comes, which
	// may be before the answer, and would take a fetch of its own with it.
	const otherToken = await other.evaluate(() => sessionStorage.getItem("vartalap.token"));
	const out = await fetch(url + "v1/logout", {
		method: "POST",
		headers: { Authorization: "Bearer " + otherToken },
		body: '{"all":true}',
	});
	check(out.status === 200, `logout of every device: ${out.status}`);
	await other.waitForSelector('#signin-error:text-is("signed out: sign in again")',
		{ timeout: TIMEOUT });
	check(await other.isHidden("#chat"), "the conversation is hidden once signed out");
	check(await other.evaluate(() => sessionStorage.getItem("vartalap.token")) === null,
		"the revoked token is forgotten");

	// Whoever signs in next on that page sees nothing of the one before.
	await other.fill("#dev-user", "erin");
	await other.click("#dev-form button");
	await other.waitForSelector("#conn.online", { timeout: TIMEOUT });
	check(await other.locator("#convs li").count() === 0,
		"the next user sees none of the previous user's conversations");
	console.log("ok: a page logged out elsewhere asks for a sign-in");
}

async function cleanup() {
	if (browser) {
		await browser.close().catch(() => {});
	}
	if (server) {
		const s = server;
		server = null;
		s.kill("SIGKILL");
	}
	rmSync(tmp, { recursive: true, force: true });
}

try {
	await run();
	await cleanup();
	console.log("PASS");
} catch (e) {
	console.error(`FAIL: ${e.stack || e}`);
	await cleanup();
	process.exit(1);
}
