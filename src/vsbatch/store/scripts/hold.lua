-- hold.lua: a worker process records a chunk message it received (see Liveness.hold).
--
-- KEYS[1]  held hash   <prefix>:held:<node>  (message id -> chunk JSON)
-- KEYS[2]  nodes set   <prefix>:nodes
-- ARGV[1]  message id
-- ARGV[2]  the chunk, JSON
-- ARGV[3]  retention, whole seconds (the held hash outlives its last write by this much)
-- ARGV[4]  the node id (the member of KEYS[2])
--
-- One command on the wire where a pipeline of three used to go with every chunk message.

redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('SADD', KEYS[2], ARGV[4])
return 1
