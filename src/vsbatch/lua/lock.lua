-- lock.lua: release or extend a per-session lock, only by the holder of its token.
--
-- KEYS[1]  lock key <prefix>:lock:<account or ''>:<session_id> (string: the holder's token)
-- ARGV[1]  operation: "release" | "extend"
-- ARGV[2]  the caller's token
-- ARGV[3]  extend only: new time to live, milliseconds
--
-- Returns 1 when the caller held the lock (now deleted, or its TTL reset), else 0. Comparing
-- and acting in one script means a holder whose lock expired and was taken by another
-- worker can never delete or prolong the new holder's lock.

if redis.call('GET', KEYS[1]) ~= ARGV[2] then
  return 0
end
if ARGV[1] == 'release' then
  return redis.call('DEL', KEYS[1])
end
return redis.call('PEXPIRE', KEYS[1], ARGV[3])
