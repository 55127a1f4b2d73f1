-- finish_row.lua: the second of a row's two scripts: record how the row ends (a terminal
-- outcome, or back in line as retrying) and let the session's lock go, in one step.
--
-- KEYS[1..5]  the batch's keys: batch, counts, rows, events, sessions (see row_core.lua)
-- KEYS[6]  the session's lock        <prefix>:lock:<account or ''>:<session_id>
-- KEYS[7]  the session's applied marker <prefix>:applied:<account or ''>:<session_id>
-- KEYS[8]  the session's failed marker  <prefix>:failed:<account or ''>:<session_id>
-- ARGV[1]  row number
-- ARGV[2]  the outcome ("succeeded", "failed", "skipped", "retrying", ...)
-- ARGV[3]  patch: JSON object of short record keys -> value; null removes the key
-- ARGV[4]  now, seconds since the epoch (the caller's clock)
-- ARGV[5]  retention TTL, whole seconds (also the applied marker's)
-- ARGV[6]  approximate MAXLEN of the events stream
-- ARGV[7]  prefix of the per-session pending sets, "<prefix>:pending:"
-- ARGV[8]  batch id
-- ARGV[9]  the caller's lock token (the fence)
-- ARGV[10] the row's place in line to record as applied to the session (keeps the maximum),
--          or "": its seq, or a retried row's parent_seq (a retry applied says that the
--          update it retries was applied, not one submitted when the retry was)
-- ARGV[11] the key prefix, "<prefix>" (the batches an older update of the session may be in)
--
-- Returns 1 when the row was written, 0 when it was already terminal (nothing written), -1
-- when the lock no longer holds the caller's token (nothing written: a worker paused past its
-- heartbeat must not overwrite the fleet's outcome). The lock is deleted when it is the
-- caller's. A row that succeeds straight from running writes no event (its record tells it).
--
-- The applied marker is what makes an older update of the session that comes late end
-- superseded (claim_row.lua). Only two can come late: a retry of a failed row (it keeps the
-- failed row's place in line; a failed row marks its session, for twice the retention, since
-- its batch's keys live on past the failure) and a row of a batch that was STAGING when this
-- one was claimed (the order gate passes those over; by now it holds its rows, whatever its
-- state). The marker is written, or kept at the maximum, only when the session has one in
-- sight or already has a marker: most sessions never need one, and it is a key each.

--#include row_core.lua
--#include order_core.lua

local function older_may_come(rec, seq)
  if redis.call('EXISTS', KEYS[7], KEYS[8]) > 0 then
    return true
  end
  local session = session_of(rec)
  return older_in_flight(ARGV[7] .. session, seq, ARGV[11], session, ARGV[8], true)
end

if redis.call('GET', KEYS[6]) ~= ARGV[9] then
  return -1
end
redis.call('DEL', KEYS[6])
local raw = redis.call('HGET', KEYS[3], ARGV[1])
if not raw then
  return redis.error_reply('NOROW row ' .. ARGV[1] .. ' not in ' .. KEYS[3])
end
local rec = read_record(raw)
if TERMINAL[rec.o] then
  return 0
end
local quiet = rec.o == 'running' and ARGV[2] == 'succeeded'
patch_row(rec, ARGV[3])
local c = {now = ARGV[4], ttl = ARGV[5], maxlen = ARGV[6], pending = ARGV[7], bid = ARGV[8]}
if ARGV[10] ~= '' and older_may_come(rec, ARGV[10]) then
  if tonumber(ARGV[10]) > tonumber(redis.call('GET', KEYS[7]) or '0') then
    redis.call('SET', KEYS[7], ARGV[10], 'EX', ARGV[5])
  else
    redis.call('EXPIRE', KEYS[7], ARGV[5])
  end
elseif ARGV[2] == 'failed' then
  redis.call('SET', KEYS[8], '1', 'EX', 2 * tonumber(ARGV[5]))
end
move_row(KEYS, ARGV[1], rec, ARGV[2], c, quiet)
return 1
