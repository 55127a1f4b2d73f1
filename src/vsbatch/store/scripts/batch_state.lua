-- batch_state.lua: open, cancel or discard a batch, atomically with its counters.
--
-- KEYS[1]  batch hash           <prefix>:b:<bid>
-- KEYS[2]  counts hash          <prefix>:b:<bid>:counts
-- KEYS[3]  rows hash            <prefix>:b:<bid>:rows
-- KEYS[4]  sessions hash        <prefix>:b:<bid>:sessions
-- KEYS[5]  events stream        <prefix>:b:<bid>:events
-- KEYS[6]  batches sorted set   <prefix>:batches
-- KEYS[7]  indexed batches set  <prefix>:indexed (a discarded batch leaves it)
-- ARGV[1]  operation: "open" | "cancel" | "discard"
-- ARGV[2]  now, seconds since the epoch (the caller's clock)
-- ARGV[3]  retention TTL, whole seconds
-- ARGV[4]  batch id (the member of KEYS[6])
-- ARGV[5]  open only, optional: the batch's row options (JSON), kept for ``resume``
--
-- open:    staging -> open, or -> done (with finished_at) when every row is terminal;
--          any other state is left as it is.
-- cancel:  staging/open -> canceled (finished_at too when every row is terminal);
--          done and canceled batches are left as they are.
-- discard: deletes every key of a STAGING batch (UNLINK: a big hash is freed lazily).
-- The keys' TTL is refreshed unless the batch had ended and is left as it is: a no-op cancel
-- of an archived batch keeps the short retention the archiver gave it.
-- Returns the batch's state after the operation ("discarded" for discard), or an error
-- reply "NOBATCH" / "BATCHSTATE <state>" (discard of a batch that is not staging).

local b = redis.call('HMGET', KEYS[1], 'state', 'total')
local state = b[1]
if not state then
  return redis.error_reply('NOBATCH ' .. KEYS[1])
end
local op = ARGV[1]

if op == 'discard' then
  if state ~= 'staging' then
    return redis.error_reply('BATCHSTATE ' .. state)
  end
  redis.call('UNLINK', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
  redis.call('ZREM', KEYS[6], ARGV[4])
  redis.call('SREM', KEYS[7], ARGV[4])
  return 'discarded'
end

local c = redis.call('HMGET', KEYS[2], 'succeeded', 'skipped', 'failed', 'rejected')
local done = 0
for _, n in ipairs(c) do done = done + (tonumber(n) or 0) end
local complete = done == (tonumber(b[2]) or 0)
local ended = state == 'done' or state == 'canceled'

if op == 'open' and state == 'staging' then
  if ARGV[5] then redis.call('HSET', KEYS[1], 'options', ARGV[5]) end
  if complete then
    state = 'done'
    redis.call('HSET', KEYS[1], 'state', state, 'finished_at', ARGV[2])
  else
    state = 'open'
    redis.call('HSET', KEYS[1], 'state', state)
  end
elseif op == 'cancel' and (state == 'staging' or state == 'open') then
  state = 'canceled'
  redis.call('HSET', KEYS[1], 'state', state)
  if complete then redis.call('HSET', KEYS[1], 'finished_at', ARGV[2]) end
end

if not ended then
  for i = 1, 5 do redis.call('EXPIRE', KEYS[i], ARGV[3]) end
end
return state
