-- claim_row.lua: the first of a row's two scripts: may this worker work on the row now?
--
-- KEYS[1..5]  the batch's keys: batch, counts, rows, events, sessions (see row_core.lua)
-- ARGV[1]  row number
-- ARGV[2]  now, seconds since the epoch (the caller's clock)
-- ARGV[3]  retention TTL, whole seconds
-- ARGV[4]  approximate MAXLEN of the events stream
-- ARGV[5]  prefix of the per-session pending sets, "<prefix>:pending:"
-- ARGV[6]  batch id
-- ARGV[7]  the key prefix, "<prefix>" (the session's lock, applied marker and heartbeats)
-- ARGV[8]  the caller's lock token
-- ARGV[9]  the lock's time to live, ms
-- ARGV[10] "1": read the session before sending (a row never sent stays as it is: the caller
--          reads, then moves it to running); "0": move it to running now
-- ARGV[11] optional: the prefix of the rate limiters' keys, "<prefix>:rl:", and ARGV[12..]
--          gcra_core.lua's ARGV for a "reserve" (one rate for every account): the row's first
--          rate slot is taken with its claim, under the lock it just took, on its account's
--          limiter (one round trip a row fewer than a slot of its own). The key is built here,
--          as the lock's is: the row's account is in its record (see lock_core.lua on Cluster)
--
-- In one step, as the worker used to in ten round trips: a row already terminal is left; a
-- row of a canceled batch never sent ends skipped (batch_canceled); a row without an update
-- ends rejected; a row whose session has an older update in flight waits (per-session FIFO,
-- order_core.lua); the session's lock is taken (lock_core.lua); a row older than an update
-- already applied to the session ends skipped (superseded) and the lock is let go; else the
-- row moves to running (its plain path writes no event) and the caller holds the lock.
--
-- Returns {"done", outcome, reason, record JSON} when the row is terminal (reason and record
-- "" when it already was; else why this call ended it, and the record it wrote); {"later", outcome of
-- the older row} to wait for the session's FIFO; {"busy", ""} when another worker holds the
-- session's lock; {"go", record JSON, "1" if the batch is canceled else "0", and with ARGV[11]
-- gcra's reply: code, wait_ms, rate, slot_ms} when the caller now holds the lock and works on
-- the row. Error reply "NOROW ..." for a missing row.

--#include row_core.lua
--#include order_core.lua
--#include lock_core.lua
--#include gcra_core.lua

local row = ARGV[1]
local raw = redis.call('HGET', KEYS[3], row)
if not raw then
  return redis.error_reply('NOROW row ' .. row .. ' not in ' .. KEYS[3])
end
local rec = read_record(raw)
if TERMINAL[rec.o] then
  return {'done', rec.o, '', ''}
end
local c = {now = ARGV[2], ttl = ARGV[3], maxlen = ARGV[4], pending = ARGV[5], bid = ARGV[6]}
-- Never sent: queued, or retrying after a failed read-first (no attempt yet).
local sent = not (rec.o == 'queued' or (rec.o == 'retrying' and (tonumber(rec.n) or 0) == 0))
local canceled = redis.call('HGET', KEYS[1], 'state') == 'canceled'
if canceled and not sent then
  rec.r = 'batch_canceled'
  move_row(KEYS, row, rec, 'skipped', c, false)
  return {'done', 'skipped', rec.r, cjson.encode(rec)}
end
if not rec.p then  -- cannot happen for rows the ledger queued; never send it
  rec.r = 'row has no update'
  move_row(KEYS, row, rec, 'rejected', c, false)
  return {'done', 'rejected', rec.r, cjson.encode(rec)}
end
local session = session_of(rec)
local older = older_in_flight(ARGV[5] .. session, rec.q, ARGV[7], session, ARGV[6])
if older then
  return {'later', older}
end
local lock = ARGV[7] .. ':lock:' .. session
if not take_lock(lock, ARGV[8], ARGV[9], ARGV[7] .. ':alive:') then
  return {'busy', ''}
end
-- An update applied after this one was queued wins (submission order); a retried row keeps
-- the place in line of the update it retries (parent_seq).
local submitted = tonumber(rec.q) or 0
if rec.x then
  submitted = tonumber(cjson.decode(rec.x).parent_seq) or submitted
end
local applied = tonumber(redis.call('GET', ARGV[7] .. ':applied:' .. session) or '0')
if applied > submitted then
  rec.r = 'superseded'
  move_row(KEYS, row, rec, 'skipped', c, false)
  redis.call('DEL', lock)
  return {'done', 'skipped', rec.r, cjson.encode(rec)}
end
if rec.o ~= 'running' and not (ARGV[10] == '1' and not sent) then
  move_row(KEYS, row, rec, 'running', c, rec.o == 'queued')
end
local go = {'go', cjson.encode(rec), canceled and '1' or '0'}
if ARGV[11] then
  local account = type(rec.a) == 'string' and rec.a ~= '' and rec.a or 'platform'
  local slot = gcra({ARGV[11] .. account}, {unpack(ARGV, 12)})
  for i = 1, 4 do go[3 + i] = slot[i] end
end
return go
