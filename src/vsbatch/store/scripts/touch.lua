-- touch.lua: a worker starts on one of the batch's chunks (see Ledger.touch).
--
-- KEYS[1]  batch hash <prefix>:b:<bid>
-- ARGV[1]  now, seconds since the epoch (the caller's clock)
--
-- Only an existing batch is touched: a late chunk of an expired batch must not leave a
-- stub hash behind. Returns {state, options JSON or ""} of the touched batch (what the chunk's
-- rows are processed with), or false for a batch that does not exist: one round trip where a
-- chunk used to read the whole batch and its counters, then touch it.

if redis.call('EXISTS', KEYS[1]) == 0 then
  return false
end
redis.call('HSET', KEYS[1], 'touched_at', ARGV[1])
local b = redis.call('HMGET', KEYS[1], 'state', 'options')
return {b[1], b[2] or ''}
