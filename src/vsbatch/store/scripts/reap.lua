-- reap.lua: take over the chunks held by one worker process, if (and only if) it is dead.
--
-- KEYS[1]  heartbeat   <prefix>:alive:<node> (exists while the process beats)
-- KEYS[2]  held hash   <prefix>:held:<node>  (message id -> chunk JSON)
-- KEYS[3]  nodes set   <prefix>:nodes
-- ARGV[1]  the node id (the member of KEYS[3])
--
-- Returns the held chunks (JSON strings) and forgets them and the node, or an empty list when
-- the node is alive. One script: of two reapers, exactly one gets a dead node's chunks.

if redis.call('EXISTS', KEYS[1]) == 1 then
  return {}
end
local chunks = redis.call('HVALS', KEYS[2])
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[3], ARGV[1])
return chunks
