-- lock_core.lua: taking a per-session lock, included by lock.lua and claim_row.lua.
--
-- ``take_lock(key, token, ttl_ms, alive_prefix)`` sets ``key`` to ``token`` for ``ttl_ms``
-- unless another holder has it, and returns true when the caller now holds it. A worker that
-- beats (see liveness.py) puts its node id in its tokens, "<node>|<random>": such a lock is
-- taken over once ``alive_prefix .. node`` is gone, so a SIGKILLed worker's sessions are free
-- within a few heartbeats rather than after the lock's TTL. (The heartbeat key is built here,
-- not passed in KEYS: on Redis Cluster it is in the lock's slot through the namespace's hash
-- tag, VSBATCH_KEY_PREFIX={vsbatch}; see docs/redis.md.)

local function take_lock(key, token, ttl_ms, alive_prefix)
  local current = redis.call('GET', key)
  if current then
    local bar = string.find(current, '|', 1, true)
    if not bar or redis.call('EXISTS', alive_prefix .. string.sub(current, 1, bar - 1)) == 1 then
      return false
    end
  end
  redis.call('SET', key, token, 'PX', ttl_ms)
  return true
end
