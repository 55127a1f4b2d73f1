-- cancel_rows.lua: end a canceled batch's QUEUED rows as skipped, a block of rows per call.
--
-- KEYS[1]  batch hash           <prefix>:b:<bid>
-- KEYS[2]  counts hash          <prefix>:b:<bid>:counts   (outcome -> rows)
-- KEYS[3]  rows hash            <prefix>:b:<bid>:rows     (row number -> compact JSON)
-- KEYS[4]  events stream        <prefix>:b:<bid>:events
-- KEYS[5]  sessions hash        <prefix>:b:<bid>:sessions (only its TTL is refreshed)
-- ARGV[1]  now, seconds since the epoch (the caller's clock)
-- ARGV[2]  retention TTL, whole seconds, applied to every key of the batch
-- ARGV[3]  approximate MAXLEN of the events stream
-- ARGV[4]  prefix of the per-session pending sets, "<prefix>:pending:"
-- ARGV[5]  batch id (pending members are "<bid>:<row>")
-- ARGV[6]  the skip reason ("batch_canceled")
-- ARGV[7..] row numbers (decimal strings)
--
-- Only a row still "queued" is touched: it was never sent, so it ends skipped, leaves its
-- session's pending set and gets one event, like transition.lua. A row a worker moved to
-- running (checked in this same script, so no stale read) is left to that worker. Counters
-- move once per call; the batch gets finished_at when its last row ended here.
-- Returns the number of rows skipped.

--#include row_core.lua

local now = tonumber(ARGV[1])
local skipped = 0
for i = 7, #ARGV do
  local raw = redis.call('HGET', KEYS[3], ARGV[i])
  if raw then
    local rec = read_record(raw)
    if rec.o == 'queued' then
      rec.o = 'skipped'
      rec.r = ARGV[6]
      rec.ua = now
      redis.call('HSET', KEYS[3], ARGV[i], cjson.encode(rec))
      redis.call('ZREM', ARGV[4] .. session_of(rec), ARGV[5] .. ':' .. ARGV[i])
      redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[3], '*',
        'row', ARGV[i], 'from', 'queued', 'to', 'skipped', 'at', ARGV[1])
      skipped = skipped + 1
    end
  end
end

if skipped > 0 then
  redis.call('HINCRBY', KEYS[2], 'queued', -skipped)
  redis.call('HINCRBY', KEYS[2], 'skipped', skipped)
  local c = redis.call('HMGET', KEYS[2], 'succeeded', 'skipped', 'failed', 'rejected')
  local done = 0
  for _, n in ipairs(c) do done = done + (tonumber(n) or 0) end
  local b = redis.call('HMGET', KEYS[1], 'total', 'state', 'finished_at')
  if done == tonumber(b[1]) and b[2] == 'canceled' and not b[3] then
    redis.call('HSET', KEYS[1], 'finished_at', ARGV[1])
    redis.call('UNLINK', KEYS[5])  -- as row_core.lua does when a batch's last row ends
    redis.call('SREM', indexed_key(KEYS, ARGV[5]), ARGV[5])
  end
end

for i = 1, 5 do redis.call('EXPIRE', KEYS[i], ARGV[2]) end
return skipped
