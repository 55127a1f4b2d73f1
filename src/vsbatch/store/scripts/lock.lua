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
-- Taking over from a worker whose heartbeat is gone: see lock_core.lua.

--#include lock_core.lua

if ARGV[1] == 'acquire' then
  return take_lock(KEYS[1], ARGV[2], ARGV[3], ARGV[4]) and 1 or 0
end
if redis.call('GET', KEYS[1]) ~= ARGV[2] then
  return 0
end
if ARGV[1] == 'release' then
  return redis.call('DEL', KEYS[1])
end
return redis.call('PEXPIRE', KEYS[1], ARGV[3])
