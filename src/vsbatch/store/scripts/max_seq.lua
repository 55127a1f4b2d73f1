-- max_seq.lua: record that update <seq> was applied to a session, keeping the maximum.
--
-- KEYS[1]  applied marker       <prefix>:applied:<account or ''>:<session_id> (string)
-- ARGV[1]  seq (positive integer, from the global <prefix>:seq counter)
-- ARGV[2]  retention TTL, whole seconds
--
-- Returns the stored maximum after the call. The TTL is refreshed either way.

local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local seq = tonumber(ARGV[1])
if seq > cur then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return seq
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return cur
