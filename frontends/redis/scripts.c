/*
 * frontends/redis/scripts.c - the Lua source of the storage scripts.
 *
 * Redis runs a script alone: no other client's command comes in between,
 * which makes a batch atomic. A script that fails half way keeps what it
 * wrote, though, so each script checks its input before its first write and
 * uses only commands that cannot fail on keys of the right type. The "#!lua"
 * line (Redis 7) makes the server refuse a writing script up front when it
 * is over maxmemory, instead of failing one of its writes.
 *
 * A store over maxmemory must still take what frees it (vartalap/storage.h,
 * "A full store"). So the commit script comes twice, from one source: as
 * is, and flagged allow-oom, which Redis runs over maxmemory too; that one
 * refuses every op that would grow the store and applies the rest. The
 * expiry and the id lease only ever delete or write a few bytes, so they
 * are flagged allow-oom themselves.
 *
 * Key layout (prefix P, default "vt:"; U is a user's hash tag {u:LEN:USER}):
 *   P U :b: DEVICE   ZSET  an inbox: record ids (hex), all scored 0
 *   P U :f: DEVICE   HASH  id -> VT_REC_* flags of that inbox's deliveries
 *   P U :dev         HASH  device -> last seen (wall ms): the registry
 *   P {r:ID}         HASH  a record: k(ind) f(rom) t(o) c(id) ts b(ody)
 *   P {r:ID} :d      SET   the inboxes (LEN:USER DEVICE) still owed it
 *   P rts            ZSET  record ids by acceptance time, for expiry
 *   P seen           ZSET  inboxes of registered devices by last seen
 *   P dd, P ddts     HASH  FROM NUL CID -> "ID:TS", and a ZSET of it by TS
 *   P maxid          STRING the largest id stored (hex)
 *   P groups         HASH  group id -> state blob
 *   P gv             HASH  group id -> the state's version (hex id)
 *   P U :rv          HASH  device ("*": every device) -> tokens revoked up to
 *                          (seconds, decimal): the user's logouts
 *   P rvts           ZSET  those revocations (LEN:USER DEVICE) by that time,
 *                          for expiry and for reading them all back
 */
#include <stddef.h>

#include <vartalap/storage.h>

#include "scripts.h"

/* Helpers every script starts with, after its "#!lua" line. */
#define PRELUDE \
	"-- Keys. A user's keys share the hash tag {u:LEN:USER}, a record's {r:ID}.\n" \
	"local P = ARGV[1]\n" \
	"local WIN = tonumber(ARGV[2]) or 0\n" \
	"local HOLD = '*'\n" \
	"local function tag(u) return '{u:' .. #u .. ':' .. u .. '}' end\n" \
	"local function box(u, d) return P .. tag(u) .. ':b:' .. d end\n" \
	"local function flg(u, d) return P .. tag(u) .. ':f:' .. d end\n" \
	"local function devs(u) return P .. tag(u) .. ':dev' end\n" \
	"local function rec(id) return P .. '{r:' .. id .. '}' end\n" \
	"local function rdl(id) return P .. '{r:' .. id .. '}:d' end\n" \
	"local function rvk(u) return P .. tag(u) .. ':rv' end\n" \
	"-- An inbox as one string, LEN:USER then DEVICE, and back.\n" \
	"local function iname(u, d) return #u .. ':' .. u .. d end\n" \
	"local function iparse(n)\n" \
	"  local c = string.find(n, ':', 1, true)\n" \
	"  local ul = c and tonumber(string.sub(n, 1, c - 1))\n" \
	"  if not ul or c + ul > #n + 1 then return nil end\n" \
	"  return string.sub(n, c + 1, c + ul), string.sub(n, c + 1 + ul)\n" \
	"end\n" \
	"-- Time @ts lies within the dedup window before @now (or after it).\n" \
	"local function within(now, ts)\n" \
	"  if WIN <= 0 then return false end\n" \
	"  if now <= ts then return true end\n" \
	"  return now - ts < WIN\n" \
	"end\n" \
	"-- Remove the delivery (u, d, id); the record goes with its last one.\n" \
	"local function undeliver(u, d, id)\n" \
	"  redis.call('ZREM', box(u, d), id)\n" \
	"  redis.call('HDEL', flg(u, d), id)\n" \
	"  local rd = rdl(id)\n" \
	"  redis.call('SREM', rd, iname(u, d))\n" \
	"  if redis.call('SCARD', rd) == 0 then\n" \
	"    redis.call('DEL', rec(id))\n" \
	"    redis.call('ZREM', P .. 'rts', id)\n" \
	"  end\n" \
	"end\n"

/* A macro's value as a string literal. */
#define STR_(x) #x
#define STR(x) STR_(x)

/*
 * The "delivered" receipts of a commit's acks (vartalap/storage.h,
 * VT_OP_ACK), part of the commit script: made from the records the acks
 * remove, in the script run that removes them, so a receipt is never
 * stored without its ack nor the ack without it. The body is escaped as
 * the engine escapes it (lib/buf.c), so a receipt reads the same whichever
 * store made it.
 */
#define RECEIPTS \
	"local REFS_MAX = " STR(VT_RECEIPT_REFS_MAX) "\n" \
	"local SHORT = {[8] = 'b', [9] = 't', [10] = 'n', [12] = 'f', [13] = 'r',\n" \
	"  [34] = '\"', [92] = '\\\\'}\n" \
	"local function esc(c)\n" \
	"  local b = string.byte(c)\n" \
	"  return '\\\\' .. (SHORT[b] or string.format('u%04x', b))\n" \
	"end\n" \
	"local function jstr(s)\n" \
	"  return '\"' .. string.gsub(s, '[%z\\1-\\31\"\\\\]', esc) .. '\"'\n" \
	"end\n" \
	"-- Per inbox: its ACKs with a receipt id, in op order (the k-th receipt of\n" \
	"-- the inbox takes the k-th one's id and is reported on it), and the\n" \
	"-- receipt of each sender taking refs. RCPTS: every receipt, in order.\n" \
	"local RBOX, RCPTS = {}, {}\n" \
	"local function rcpt_box(u, d)\n" \
	"  local n = iname(u, d)\n" \
	"  if not RBOX[n] then RBOX[n] = {u = u, d = d, ops = {}, used = 0, open = {}} end\n" \
	"  return RBOX[n]\n" \
	"end\n" \
	"-- Add the ref of an ACK (its reply @res) that removed a message of @sender.\n" \
	"local function add_ref(rb, sender, ref, cid, res)\n" \
	"  local r = rb.open[sender]\n" \
	"  if not r or #r.refs == REFS_MAX then\n" \
	"    rb.used = rb.used + 1\n" \
	"    local o = rb.ops[rb.used]\n" \
	"    r = {id = o.rid, ts = o.ts, on = o.res, rb = rb, to = sender}\n" \
	"    r.refs, r.acks = {}, {}\n" \
	"    rb.open[sender] = r\n" \
	"    RCPTS[#RCPTS + 1] = r\n" \
	"  end\n" \
	"  r.refs[#r.refs + 1] = '{\"ref\":\"' .. ref .. '\",\"cid\":' .. jstr(cid) .. '}'\n" \
	"  r.acks[#r.acks + 1] = res\n" \
	"end\n" \
	"-- Store each receipt as a PUT to its sender's devices without cap or\n" \
	"-- dedup, over maxmemory too: it comes with an ack, which frees more than\n" \
	"-- it takes, and nothing would make it again. One whose id another record\n" \
	"-- holds (see taken) is left out: its acks then report no receipt, and\n" \
	"-- the engine stores it itself. Kind '2' is VT_KIND_DELIVERED.\n" \
	"local function store_receipts()\n" \
	"  for _, r in ipairs(RCPTS) do\n" \
	"    local p = {id = r.id, kind = '2', from = r.rb.u, to = r.to, cid = '', ts = r.ts}\n" \
	"    p.cap = 0\n" \
	"    p.body = '{\"device\":' .. jstr(r.rb.d) .. ',\"refs\":[' ..\n" \
	"      table.concat(r.refs, ',') .. ']}'\n" \
	"    if not taken(p) then\n" \
	"      local out = deliver(p, targets({}, {r.to}, nil))\n" \
	"      raise_maxid(p.id)\n" \
	"      for _, a in ipairs(r.acks) do a[5] = p.id end\n" \
	"      r.on[6], r.on[7] = r.to, p.body\n" \
	"      for i = 4, #out do r.on[#r.on + 1] = out[i] end\n" \
	"    end\n" \
	"  end\n" \
	"end\n"

/*
 * Logouts (VT_OP_REVOKE), part of the commit script. Times are positive
 * decimal strings, compared by length and then byte by byte: exact where a
 * Lua number (a double) is not. A stored value that is not such a string
 * (another program's) is taken for older than any. Applied over maxmemory
 * too: a logout must not wait for acks to make room.
 */
#define REVOKE \
	"local ALL = '*'\n" \
	"local function is_time(s) return s and string.find(s, '^[1-9]%d*$') ~= nil end\n" \
	"local function later(a, b)\n" \
	"  if #a ~= #b then return #a > #b end\n" \
	"  return a > b\n" \
	"end\n" \
	"-- A scope keeps its latest time. ALL forgets its user's single devices\n" \
	"-- revoked up to its time: it covers them.\n" \
	"local function revoke()\n" \
	"  local u, d, ts = arg(), arg(), arg()\n" \
	"  local k = rvk(u)\n" \
	"  local cur = redis.call('HGET', k, d)\n" \
	"  if not is_time(cur) or later(ts, cur) then\n" \
	"    redis.call('HSET', k, d, ts)\n" \
	"    redis.call('ZADD', P .. 'rvts', ts, iname(u, d))\n" \
	"  end\n" \
	"  if d ~= ALL then return {0} end\n" \
	"  local kept = redis.call('HGETALL', k)\n" \
	"  for i = 1, #kept, 2 do\n" \
	"    local v = kept[i + 1]\n" \
	"    if kept[i] ~= ALL and (not is_time(v) or not later(v, ts)) then\n" \
	"      redis.call('HDEL', k, kept[i])\n" \
	"      redis.call('ZREM', P .. 'rvts', iname(u, kept[i]))\n" \
	"    end\n" \
	"  end\n" \
	"  return {0}\n" \
	"end\n"

/*
 * The commit script after its first line. FULL (set before) says the server
 * is over maxmemory: then only what does not grow the store is applied.
 */
#define COMMIT_BODY \
	"local at = 3\n" \
	"local function arg()\n" \
	"  local v = ARGV[at]\n" \
	"  at = at + 1\n" \
	"  return v\n" \
	"end\n" \
	"local function pairs_of(n, f)\n" \
	"  local t = {}\n" \
	"  for i = 1, n do t[i] = f() end\n" \
	"  return t\n" \
	"end\n" \
	"local function inbox() return {arg(), arg()} end\n" \
	"-- Every inbox a PUT names, as {user, device, own}, in routing order.\n" \
	"local function targets(to, users, own)\n" \
	"  local t = {}\n" \
	"  for _, x in ipairs(to) do t[#t + 1] = {x[1], x[2], false} end\n" \
	"  for _, u in ipairs(users) do\n" \
	"    local ds = redis.call('HKEYS', devs(u))\n" \
	"    if #ds == 0 then t[#t + 1] = {u, HOLD, false} end\n" \
	"    for _, d in ipairs(ds) do t[#t + 1] = {u, d, false} end\n" \
	"  end\n" \
	"  if own then\n" \
	"    for _, d in ipairs(redis.call('HKEYS', devs(own[1]))) do\n" \
	"      if d ~= own[2] then t[#t + 1] = {own[1], d, true} end\n" \
	"    end\n" \
	"  end\n" \
	"  return t\n" \
	"end\n" \
	"local function full(t, id, cap)\n" \
	"  if cap <= 0 then return false end\n" \
	"  local b = box(t[1], t[2])\n" \
	"  return redis.call('ZCARD', b) >= cap and not redis.call('ZSCORE', b, id)\n" \
	"end\n" \
	"local function put_record(p)\n" \
	"  if redis.call('EXISTS', rec(p.id)) == 1 then return end\n" \
	"  redis.call('HSET', rec(p.id), 'k', p.kind, 'f', p.from, 't', p.to, 'c', p.cid,\n" \
	"    'ts', p.ts, 'b', p.body)\n" \
	"  redis.call('ZADD', P .. 'rts', p.ts, p.id)\n" \
	"end\n" \
	"-- Add the deliveries the PUT lacks; returns the reply with its out_to.\n" \
	"local function deliver(p, ts)\n" \
	"  local res, seen, stored = {0, '', 0}, {}, false\n" \
	"  for _, t in ipairs(ts) do\n" \
	"    local n, b = iname(t[1], t[2]), box(t[1], t[2])\n" \
	"    if not seen[n] and not redis.call('ZSCORE', b, p.id) then\n" \
	"      if full(t, p.id, p.cap) then\n" \
	"        if not t[3] then res[3] = res[3] + 1 end\n" \
	"      else\n" \
	"        if not stored then put_record(p) end\n" \
	"        stored = true\n" \
	"        redis.call('ZADD', b, 0, p.id)\n" \
	"        redis.call('SADD', rdl(p.id), n)\n" \
	"        res[#res + 1] = t[1]\n" \
	"        res[#res + 1] = t[2]\n" \
	"      end\n" \
	"    end\n" \
	"    seen[n] = true\n" \
	"  end\n" \
	"  return res\n" \
	"end\n" \
	"local function dedup_hit(p)\n" \
	"  if not p.dedup then return nil end\n" \
	"  local e = redis.call('HGET', P .. 'dd', p.dk)\n" \
	"  if not e then return nil end\n" \
	"  local eid, ets = string.sub(e, 1, 16), tonumber(string.sub(e, 18))\n" \
	"  if eid ~= p.id and ets and within(tonumber(p.ts), ets) then return eid end\n" \
	"  return nil\n" \
	"end\n" \
	"-- A duplicate's answer: the original's id, and the inboxes that still owe\n" \
	"-- it and were never notified. The commit that stored it may have been\n" \
	"-- reported failed to its node (a timeout), which then woke none of them.\n" \
	"-- An original stored by this batch is routed by its own op.\n" \
	"local routed = {}\n" \
	"local function owed(id)\n" \
	"  local res = {0, id, 0}\n" \
	"  if routed[id] then return res end\n" \
	"  for _, n in ipairs(redis.call('SMEMBERS', rdl(id))) do\n" \
	"    local u, d = iparse(n)\n" \
	"    if u and redis.call('HGET', flg(u, d), id) ~= '1' then\n" \
	"      res[#res + 1] = u\n" \
	"      res[#res + 1] = d\n" \
	"    end\n" \
	"  end\n" \
	"  return res\n" \
	"end\n" \
	"-- Does another record hold the PUT's id? A re-sent PUT carries the same\n" \
	"-- record; another one means two nodes were given one block of ids.\n" \
	"local function taken(p)\n" \
	"  local r = redis.call('HMGET', rec(p.id), 'k', 'f', 't', 'c', 'b')\n" \
	"  if not (r[1] or r[2] or r[3] or r[4] or r[5]) then return false end\n" \
	"  return r[1] ~= p.kind or r[2] ~= p.from or r[3] ~= p.to or r[4] ~= p.cid or\n" \
	"    r[5] ~= p.body\n" \
	"end\n" \
	"local function dedup_record(p)\n" \
	"  if not p.dedup then return end\n" \
	"  local e = redis.call('HGET', P .. 'dd', p.dk)\n" \
	"  if e and string.sub(e, 1, 16) == p.id then return end\n" \
	"  redis.call('HSET', P .. 'dd', p.dk, p.id .. ':' .. p.ts)\n" \
	"  redis.call('ZADD', P .. 'ddts', p.ts, p.dk)\n" \
	"end\n" \
	"-- Is group g at version base now? The base of a group not stored is\n" \
	"-- all zeros; a group stored before versions were kept takes any other.\n" \
	"local NOVER = string.rep('0', 16)\n" \
	"local function at_version(g, base)\n" \
	"  local v = redis.call('HGET', P .. 'gv', g)\n" \
	"  if v then return v == base end\n" \
	"  if redis.call('HEXISTS', P .. 'groups', g) == 1 then return base ~= NOVER end\n" \
	"  return base == NOVER\n" \
	"end\n" \
	"-- The optional precondition of an op: CHECK [group base].\n" \
	"local function precondition()\n" \
	"  if arg() ~= '1' then return nil end\n" \
	"  return {arg(), arg()}\n" \
	"end\n" \
	"local function stale(pre) return pre and not at_version(pre[1], pre[2]) end\n" \
	"local function raise_maxid(id)\n" \
	"  local m = redis.call('GET', P .. 'maxid')\n" \
	"  if not m or m < id then redis.call('SET', P .. 'maxid', id) end\n" \
	"end\n" \
	"local function put()\n" \
	"  local p = {id = arg(), kind = arg(), from = arg(), to = arg()}\n" \
	"  p.cid, p.ts = arg(), arg()\n" \
	"  p.body, p.dedup, p.cap, p.skip = arg(), arg() == '1', tonumber(arg()), arg() == '1'\n" \
	"  local to = pairs_of(tonumber(arg()), inbox)\n" \
	"  local users = pairs_of(tonumber(arg()), arg)\n" \
	"  local own = nil\n" \
	"  if arg() == '1' then own = inbox() end\n" \
	"  local pre = precondition()\n" \
	"  p.dk = p.from .. '\\0' .. p.cid\n" \
	"  local dup = dedup_hit(p)\n" \
	"  if dup then return owed(dup) end\n" \
	"  if stale(pre) then return {3, '', 0} end\n" \
	"  if taken(p) then return {5, '', 0} end\n" \
	"  local ts = targets(to, users, own)\n" \
	"  for _, t in ipairs(ts) do\n" \
	"    if not p.skip and not t[3] and full(t, p.id, p.cap) then return {2, '', 0} end\n" \
	"  end\n" \
	"  if FULL then return {4, '', 0} end\n" \
	"  local res = deliver(p, ts)\n" \
	"  routed[p.id] = true\n" \
	"  dedup_record(p)\n" \
	"  raise_maxid(p.id)\n" \
	"  return res\n" \
	"end\n" \
	RECEIPTS \
	"-- An ACK's reply: status, kind, from and cid of what it removed, then the\n" \
	"-- receipt its ref went into, and the receipt reported on it (to, body\n" \
	"-- and the inboxes it reached), both filled in by store_receipts().\n" \
	"local function ack()\n" \
	"  local u, d, id = arg(), arg(), arg()\n" \
	"  local res, rb, ref = {1, '0', '', '', ''}, nil, nil\n" \
	"  if arg() == '1' then\n" \
	"    local rid, ts = arg(), arg()\n" \
	"    ref = arg()\n" \
	"    rb = rcpt_box(u, d)\n" \
	"    rb.ops[#rb.ops + 1] = {rid = rid, ts = ts, res = res}\n" \
	"  end\n" \
	"  if not redis.call('ZSCORE', box(u, d), id) then return res end\n" \
	"  local r = redis.call('HMGET', rec(id), 'k', 'f', 'c')\n" \
	"  undeliver(u, d, id)\n" \
	"  res[1], res[2], res[3], res[4] = 0, r[1] or '0', r[2] or '', r[3] or ''\n" \
	"  -- another user's message (kind '1', VT_KIND_MESSAGE) owes a receipt\n" \
	"  if rb and res[2] == '1' and res[3] ~= '' and res[3] ~= u then\n" \
	"    add_ref(rb, res[3], ref, res[4], res)\n" \
	"  end\n" \
	"  return res\n" \
	"end\n" \
	"-- The first device of a user takes over the holding inbox, flags and all.\n" \
	"local function claim(u, d)\n" \
	"  local hb, hf = box(u, HOLD), flg(u, HOLD)\n" \
	"  local tb, tf, hn, tn = box(u, d), flg(u, d), iname(u, HOLD), iname(u, d)\n" \
	"  for _, id in ipairs(redis.call('ZRANGE', hb, 0, -1)) do\n" \
	"    local rd = rdl(id)\n" \
	"    redis.call('SREM', rd, hn)\n" \
	"    if not redis.call('ZSCORE', tb, id) then\n" \
	"      redis.call('ZADD', tb, 0, id)\n" \
	"      redis.call('SADD', rd, tn)\n" \
	"      local f = redis.call('HGET', hf, id)\n" \
	"      if f then redis.call('HSET', tf, id, f) end\n" \
	"    end\n" \
	"  end\n" \
	"  redis.call('DEL', hb, hf)\n" \
	"end\n" \
	"-- A clock that went back must not make a device look older than it was.\n" \
	"-- Over maxmemory only a user's first device registers: it claims what was\n" \
	"-- held, so the user can drain it.\n" \
	"local function touch()\n" \
	"  local u, d, ts = arg(), arg(), arg()\n" \
	"  local dk = devs(u)\n" \
	"  local cur = redis.call('HGET', dk, d)\n" \
	"  if cur then\n" \
	"    if tonumber(ts) > tonumber(cur) then\n" \
	"      redis.call('HSET', dk, d, ts)\n" \
	"      redis.call('ZADD', P .. 'seen', ts, iname(u, d))\n" \
	"    end\n" \
	"    return {0, redis.call('HLEN', dk)}\n" \
	"  end\n" \
	"  local before = redis.call('HLEN', dk)\n" \
	"  if FULL and before > 0 then return {4} end\n" \
	"  redis.call('HSET', dk, d, ts)\n" \
	"  redis.call('ZADD', P .. 'seen', ts, iname(u, d))\n" \
	"  if before == 0 then claim(u, d) end\n" \
	"  return {0, before + 1}\n" \
	"end\n" \
	"local function notified()\n" \
	"  local u, d, id = arg(), arg(), arg()\n" \
	"  if not redis.call('ZSCORE', box(u, d), id) then return {1} end\n" \
	"  redis.call('HSET', flg(u, d), id, '1')\n" \
	"  return {0}\n" \
	"end\n" \
	"local function group()\n" \
	"  local g, data, ver = arg(), arg(), arg()\n" \
	"  local pre = precondition()\n" \
	"  if FULL then return {4} end\n" \
	"  if stale(pre) then return {3} end\n" \
	"  if data == '' then\n" \
	"    redis.call('HDEL', P .. 'groups', g)\n" \
	"    redis.call('HDEL', P .. 'gv', g)\n" \
	"  else\n" \
	"    redis.call('HSET', P .. 'groups', g, data)\n" \
	"    redis.call('HSET', P .. 'gv', g, ver)\n" \
	"  end\n" \
	"  return {0}\n" \
	"end\n" \
	REVOKE \
	"local ops = {P = put, A = ack, T = touch, N = notified, G = group, R = revoke}\n" \
	"-- Step over a flag and the @n fields it announces when it is '1'.\n" \
	"local function skip_opt(n)\n" \
	"  if ARGV[at] == '1' then at = at + n end\n" \
	"  at = at + 1\n" \
	"end\n" \
	"-- Step over one PUT's fields; false when its counts are not counts.\n" \
	"local function skip_put()\n" \
	"  at = at + 10\n" \
	"  local nto = tonumber(ARGV[at])\n" \
	"  if not nto or nto < 0 then return false end\n" \
	"  at = at + 2 * nto + 1\n" \
	"  local nu = tonumber(ARGV[at])\n" \
	"  if not nu or nu < 0 then return false end\n" \
	"  at = at + nu + 1\n" \
	"  skip_opt(2)\n" \
	"  skip_opt(2)\n" \
	"  return true\n" \
	"end\n" \
	"-- Check the whole encoding before writing anything: a script that stops\n" \
	"-- half way keeps what it wrote, so a bad batch must fail here.\n" \
	"local nops = 0\n" \
	"local function check()\n" \
	"  local skip, opt = {T = 3, N = 3, R = 3}, {A = 3, G = 2}\n" \
	"  while at <= #ARGV do\n" \
	"    local k = arg()\n" \
	"    nops = nops + 1\n" \
	"    if k == 'P' then\n" \
	"      if not skip_put() then return false end\n" \
	"    elseif opt[k] then\n" \
	"      at = at + 3\n" \
	"      skip_opt(opt[k])\n" \
	"    elseif skip[k] then\n" \
	"      at = at + skip[k]\n" \
	"    else\n" \
	"      return false\n" \
	"    end\n" \
	"  end\n" \
	"  return at == #ARGV + 1\n" \
	"end\n" \
	"if not check() then return redis.error_reply('ERR vartalap: malformed batch') end\n" \
	"-- Over maxmemory the oldest (sender, client id) pairs give way, about\n" \
	"-- twice as many as the batch could add, so that later batches fit again:\n" \
	"-- kept to the end of their window they would have every message refused.\n" \
	"-- Only while they hold more than a sixty-fourth of maxmemory: when\n" \
	"-- messages fill it, forgetting would free next to nothing and leave no\n" \
	"-- re-send recognised. After the ops, which find the pairs they re-send.\n" \
	"local function forget_pairs()\n" \
	"  local max = string.match(redis.call('INFO', 'memory'), 'maxmemory:(%d+)')\n" \
	"  local dd, ddts = P .. 'dd', P .. 'ddts'\n" \
	"  local used = (redis.call('MEMORY', 'USAGE', dd) or 0) +\n" \
	"    (redis.call('MEMORY', 'USAGE', ddts) or 0)\n" \
	"  if used <= (tonumber(max) or 0) / 64 then return end\n" \
	"  for _, k in ipairs(redis.call('ZRANGE', ddts, 0, 2 * nops + 31)) do\n" \
	"    redis.call('HDEL', dd, k)\n" \
	"    redis.call('ZREM', ddts, k)\n" \
	"  end\n" \
	"end\n" \
	"at = 3\n" \
	"local res = {}\n" \
	"while at <= #ARGV do res[#res + 1] = ops[arg()]() end\n" \
	"store_receipts()\n" \
	"if FULL then forget_pairs() end\n" \
	"return res\n"

struct vt__rscript vt__rscript_commit_full = {
	"commit (over maxmemory)",
	"#!lua flags=allow-oom\n" PRELUDE "local FULL = true\n" COMMIT_BODY,
	"",
	NULL,
};

struct vt__rscript vt__rscript_commit = {
	"commit",
	"#!lua\n" PRELUDE "local FULL = false\n" COMMIT_BODY,
	"",
	&vt__rscript_commit_full,
};

struct vt__rscript vt__rscript_list = {
	"list",
	"#!lua flags=no-writes\n" PRELUDE
	"-- An inbox entry without its record is passed over, and the scan goes on,\n"
	"-- so that an answer shorter than the limit means the inbox has no more.\n"
	"local u, d, lim = ARGV[3], ARGV[4], tonumber(ARGV[6])\n"
	"local b, after, out = box(u, d), '(' .. ARGV[5], {}\n"
	"while #out < lim do\n"
	"  local want = lim - #out\n"
	"  local ids = redis.call('ZRANGEBYLEX', b, after, '+', 'LIMIT', 0, want)\n"
	"  for _, id in ipairs(ids) do\n"
	"    local r = redis.call('HMGET', rec(id), 'k', 'f', 't', 'c', 'ts', 'b')\n"
	"    if r[1] and r[2] and r[3] and r[4] and r[5] and r[6] then\n"
	"      local f = redis.call('HGET', flg(u, d), id) or '0'\n"
	"      out[#out + 1] = {id, f, r[1], r[2], r[3], r[4], r[5], r[6]}\n"
	"    end\n"
	"  end\n"
	"  if #ids < want then break end\n"
	"  after = '(' .. ids[#ids]\n"
	"end\n"
	"return out\n",
	"",
	NULL,
};

struct vt__rscript vt__rscript_expire = {
	"expire",
	"#!lua flags=allow-oom\n" PRELUDE
	"local now, before, dbefore = tonumber(ARGV[3]), ARGV[4], ARGV[5]\n"
	"local max, rbefore = tonumber(ARGV[6]) or 0, ARGV[7]\n"
	"local removed = 0\n"
	"-- Records accepted before @before, oldest first, delivery by delivery.\n"
	"local function records()\n"
	"  while removed < max do\n"
	"    local ids = redis.call('ZRANGEBYSCORE', P .. 'rts', '-inf', '(' .. before,\n"
	"      'LIMIT', 0, 64)\n"
	"    if #ids == 0 then return end\n"
	"    for _, id in ipairs(ids) do\n"
	"      local ns = redis.call('SMEMBERS', rdl(id))\n"
	"      if #ns == 0 then\n"
	"        redis.call('ZREM', P .. 'rts', id)\n"
	"        redis.call('DEL', rec(id))\n"
	"      end\n"
	"      for _, n in ipairs(ns) do\n"
	"        if removed >= max then return end\n"
	"        local u, d = iparse(n)\n"
	"        if u then\n"
	"          undeliver(u, d, id)\n"
	"          removed = removed + 1\n"
	"        else\n"
	"          redis.call('SREM', rdl(id), n)\n"
	"        end\n"
	"      end\n"
	"    end\n"
	"  end\n"
	"end\n"
	"-- Empty a device's inbox up to the limit; true when it emptied.\n"
	"local function drain(u, d)\n"
	"  local b = box(u, d)\n"
	"  while removed < max do\n"
	"    local ids = redis.call('ZRANGE', b, 0, math.min(max - removed, 256) - 1)\n"
	"    if #ids == 0 then break end\n"
	"    for _, id in ipairs(ids) do\n"
	"      undeliver(u, d, id)\n"
	"      removed = removed + 1\n"
	"    end\n"
	"  end\n"
	"  return redis.call('ZCARD', b) == 0\n"
	"end\n"
	"-- Devices last seen before @dbefore, oldest first, with their deliveries.\n"
	"-- Devices without deliveries count too, so one sweep stays bounded.\n"
	"local function devices()\n"
	"  local forgotten = 0\n"
	"  while removed < max and forgotten < max do\n"
	"    local ns = redis.call('ZRANGEBYSCORE', P .. 'seen', '-inf', '(' .. dbefore,\n"
	"      'LIMIT', 0, 1)\n"
	"    if #ns == 0 then return end\n"
	"    local u, d = iparse(ns[1])\n"
	"    if u then\n"
	"      if not drain(u, d) then return end\n"
	"      redis.call('HDEL', devs(u), d)\n"
	"      redis.call('DEL', flg(u, d))\n"
	"    end\n"
	"    redis.call('ZREM', P .. 'seen', ns[1])\n"
	"    forgotten = forgotten + 1\n"
	"  end\n"
	"end\n"
	"-- Dedup entries no longer within the window at @now.\n"
	"local function dedup()\n"
	"  while true do\n"
	"    local e = redis.call('ZRANGE', P .. 'ddts', 0, 63, 'WITHSCORES')\n"
	"    if #e == 0 then return end\n"
	"    for i = 1, #e, 2 do\n"
	"      if within(now, tonumber(e[i + 1])) then return end\n"
	"      redis.call('HDEL', P .. 'dd', e[i])\n"
	"      redis.call('ZREM', P .. 'ddts', e[i])\n"
	"    end\n"
	"  end\n"
	"end\n"
	"-- Revocations of times before @rbefore (seconds), oldest first: as old as\n"
	"-- an unused device. At most @max a sweep, like the devices.\n"
	"local function revocations()\n"
	"  local forgotten = 0\n"
	"  while forgotten < max do\n"
	"    local ns = redis.call('ZRANGEBYSCORE', P .. 'rvts', '-inf', '(' .. rbefore,\n"
	"      'LIMIT', 0, math.min(max - forgotten, 64))\n"
	"    if #ns == 0 then return end\n"
	"    for _, n in ipairs(ns) do\n"
	"      local u, d = iparse(n)\n"
	"      if u then redis.call('HDEL', rvk(u), d) end\n"
	"      redis.call('ZREM', P .. 'rvts', n)\n"
	"      forgotten = forgotten + 1\n"
	"    end\n"
	"  end\n"
	"end\n"
	"records()\n"
	"devices()\n"
	"dedup()\n"
	"revocations()\n"
	"return removed\n",
	"",
	NULL,
};

struct vt__rscript vt__rscript_revoked = {
	"revoked",
	"#!lua flags=no-writes\n" PRELUDE
	"-- An index entry that cannot be read comes back with an empty user, for\n"
	"-- the caller to log; one whose value is gone, with an empty time.\n"
	"local page = redis.call('ZSCAN', P .. 'rvts', ARGV[3], 'COUNT', 256)\n"
	"local out = {page[1]}\n"
	"for i = 1, #page[2], 2 do\n"
	"  local n = page[2][i]\n"
	"  local u, d = iparse(n)\n"
	"  if not u then u, d = '', n end\n"
	"  out[#out + 1] = u\n"
	"  out[#out + 1] = d\n"
	"  out[#out + 1] = u ~= '' and redis.call('HGET', rvk(u), d) or ''\n"
	"end\n"
	"return out\n",
	"",
	NULL,
};
