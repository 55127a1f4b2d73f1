-- transition.lua: move one ledger row to a new outcome, atomically and idempotently.
--
-- KEYS[1]  batch hash           <prefix>:b:<bid>
-- KEYS[2]  counts hash          <prefix>:b:<bid>:counts   (outcome -> rows)
-- KEYS[3]  rows hash            <prefix>:b:<bid>:rows     (row number -> compact JSON)
-- KEYS[4]  events stream        <prefix>:b:<bid>:events
-- KEYS[5]  sessions hash        <prefix>:b:<bid>:sessions (only its TTL is refreshed)
-- ARGV[1]  row number (decimal string, the field in KEYS[3])
-- ARGV[2]  new outcome ("succeeded", "running", ...)
-- ARGV[3]  patch: JSON object of short record keys -> value; null removes the key
-- ARGV[4]  now, seconds since the epoch (the caller's injected clock, not server time)
-- ARGV[5]  retention TTL, whole seconds, applied to every key of the batch (see row_core.lua)
-- ARGV[6]  approximate MAXLEN of the events stream
-- ARGV[7]  prefix of the per-session pending sets, "<prefix>:pending:"
-- ARGV[8]  batch id (pending members are "<bid>:<row>")
-- KEYS[6]  optional, with ARGV[9]: the fence, the session's lock <prefix>:lock:<account>:<sid>
-- ARGV[9]  optional: the caller's lock token ("" for none)
-- ARGV[10] optional: the outcome the row must be in, else nothing is written ("" for any);
--          cancel skips only rows still "queued", so a stale read never ends a row in flight
--
-- Returns 1 when the row was written, 0 (writing nothing) when the row is already terminal
-- or not in the outcome ARGV[10] names,
-- -1 (writing nothing) when fenced and the lock no longer holds the caller's token, and an
-- error reply "NOROW ..." when the row does not exist.
-- The fence: a worker paused past its heartbeat loses its session locks to the fleet (see
-- lock.lua); when it resumes, none of its writes to the row may land, not even on a row that
-- is not terminal yet (its new holder may be running it). Checking the token in this script
-- makes the check and the write one atomic step.
-- Counters move only when the outcome really changes, so a redelivered message that repeats
-- a transition moves nothing. When the last row becomes terminal an OPEN batch becomes DONE;
-- a CANCELED batch keeps its state but gets finished_at. A row that becomes terminal leaves
-- its session's pending set (ARGV[7] .. "<account>:<session_id>"), which lets the session's
-- next update go (per-session FIFO, see order_gate.lua).

--#include row_core.lua

if ARGV[9] and ARGV[9] ~= '' and redis.call('GET', KEYS[6]) ~= ARGV[9] then
  return -1
end
local raw = redis.call('HGET', KEYS[3], ARGV[1])
if not raw then
  return redis.error_reply('NOROW row ' .. ARGV[1] .. ' not in ' .. KEYS[3])
end
local rec = read_record(raw)
if TERMINAL[rec.o] or (ARGV[10] and ARGV[10] ~= '' and rec.o ~= ARGV[10]) then
  return 0
end
patch_row(rec, ARGV[3])
local c = {now = ARGV[4], ttl = ARGV[5], maxlen = ARGV[6], pending = ARGV[7], bid = ARGV[8]}
move_row(KEYS, ARGV[1], rec, ARGV[2], c, false)
return 1
