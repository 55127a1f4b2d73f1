-- touch.lua: note that a worker started on one of the batch's chunks (see Ledger.touch).
--
-- KEYS[1]  batch hash <prefix>:b:<bid>
-- ARGV[1]  now, seconds since the epoch (the caller's clock)
--
-- Only an existing batch is touched: a late chunk of an expired batch must not leave a
-- stub hash behind. Returns 1 if touched, else 0.

if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], 'touched_at', ARGV[1])
return 1
