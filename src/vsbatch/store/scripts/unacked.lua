-- unacked.lua: the broker's record of a message a worker took and has not acknowledged yet
-- (kombu's Redis QoS: the same two keys, written or removed together, see worker/broker.py).
--
-- KEYS[1]  kombu's unacked index, a sorted set: delivery tag -> time delivered
-- KEYS[2]  kombu's unacked hash: delivery tag -> [message, exchange, routing key] (JSON)
-- ARGV[1]  "add" | "remove"
-- ARGV[2]  the delivery tag
-- ARGV[3]  add only: the time delivered (seconds since the epoch)
-- ARGV[4]  add only: the record (JSON)
--
-- One command where kombu sends MULTI, two writes and EXEC, once when a worker takes a
-- message and again when it acknowledges it. Kombu's restore of messages past the visibility
-- timeout reads these keys as it always does.

if ARGV[1] == 'add' then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[4])
else
  redis.call('ZREM', KEYS[1], ARGV[2])
  redis.call('HDEL', KEYS[2], ARGV[2])
end
return 1
