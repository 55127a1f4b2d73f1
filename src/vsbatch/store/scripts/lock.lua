-- lock.lua: take, release or extend a per-session lock; only its token's holder may release
-- or extend it, and a lock is taken over only from a worker whose heartbeat is gone.
--
-- KEYS[1]  lock key <prefix>:lock:<account or ''>:<session_id> (string: the holder's token)
-- ARGV[1]  operation: "acquire" | "release" | "extend"
-- ARGV[2]  the caller's token
-- ARGV[3]  acquire, extend: time to live, milliseconds
-- ARGV[4]  acquire: the heartbeat key prefix, <prefix>:alive:
--
-- Returns 1 when the caller now holds the lock (acquire), or held it (now deleted, or its TTL
-- reset), else 0. Comparing and acting in one script means a holder whose lock expired and
-- was taken by another worker can never delete or prolong the new holder's lock. "extend" is
-- also the fence a worker checks right before each send (SessionLocks.confirm): 0 means its
-- lock was taken over while it was paused, and it must not send.
--
-- A worker that beats (see liveness.py) puts its node id in its tokens, "<node>|<random>".
-- Such a lock is taken over once <prefix>:alive:<node> is gone: a SIGKILLed worker's sessions
-- are free within a few heartbeats rather than after the lock's TTL. (The heartbeat key is
-- built here, not passed in KEYS: fine on a single Redis, which is what vsbatch uses.)

if ARGV[1] == 'acquire' then
  local current = redis.call('GET', KEYS[1])
  if current then
    local bar = string.find(current, '|', 1, true)
    if not bar or redis.call('EXISTS', ARGV[4] .. string.sub(current, 1, bar - 1)) == 1 then
      return 0
    end
  end
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
if redis.call('GET', KEYS[1]) ~= ARGV[2] then
  return 0
end
if ARGV[1] == 'release' then
  return redis.call('DEL', KEYS[1])
end
return redis.call('PEXPIRE', KEYS[1], ARGV[3])
