-- gcra.lua: the fleet-wide rate limiter for one Stripe account (GCRA with reservations,
-- adaptive: a 429 cuts the rate, which then recovers linearly). Time is Redis server time,
-- so every worker on every machine agrees on it.
--
-- KEYS[1]  state hash <prefix>:rl:<account>, fields (all milliseconds or requests/s):
--            tat  theoretical arrival time of the next free slot (ms since the epoch)
--            pr   rate right after the last penalty (requests/s)
--            pt   time of the last penalty (ms since the epoch)
-- ARGV[1]  operation: "reserve" | "penalize" | "rate"
-- ARGV[2]  configured rate, requests/s (> 0)
-- ARGV[3]  burst, requests (>= 1): how many may go at once after an idle spell
-- ARGV[4]  max wait, ms: a reservation further away than this is not made
-- ARGV[5]  recovery window, ms: time from a penalty back to the configured rate
-- ARGV[6]  minimum rate after penalties, requests/s
-- ARGV[7]  penalty cooldown, ms: penalties closer together than this cut only once
--          (the 429s of requests already in flight describe the same overload)
-- ARGV[8]  backoff: the share of the current rate kept after a penalty (0 < b < 1)
--
-- Returns {code, wait_ms, rate} with wait_ms and rate as decimal strings:
--   reserve:  code 1 and the wait before sending (the slot is taken), or code 0 and the
--             wait it would have needed (nothing taken; the caller should try later);
--   penalize: code 2 and the rate after the cut;  rate: code 2 and the current rate.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local op = ARGV[1]
local cfg = tonumber(ARGV[2])
local recovery = tonumber(ARGV[5])
local s = redis.call('HMGET', KEYS[1], 'tat', 'pr', 'pt')
local tat = tonumber(s[1]) or 0
local pr, pt = tonumber(s[2]), tonumber(s[3])

-- Effective rate: linear recovery from pr (at pt) to cfg over the recovery window.
local rate = cfg
if pr and pt and recovery > 0 and now - pt < recovery then
  rate = math.min(cfg, pr + (cfg - pr) * math.max(now - pt, 0) / recovery)
end

local function fmt(x) return string.format('%.3f', x) end
local function keep(until_ms)
  redis.call('PEXPIRE', KEYS[1], math.ceil(math.max(until_ms - now, 0) + recovery + 1000))
end

if op == 'penalize' then
  if not pt or now - pt >= tonumber(ARGV[7]) then
    rate = math.max(math.min(tonumber(ARGV[6]), cfg), rate * tonumber(ARGV[8]))
    redis.call('HSET', KEYS[1], 'pr', fmt(rate), 'pt', fmt(now))
  end
  keep(tat)
  return {2, '0', fmt(rate)}
elseif op == 'rate' then
  return {2, '0', fmt(rate)}
end

local interval = 1000 / rate
local tolerance = (tonumber(ARGV[3]) - 1) * interval
local base = math.max(tat, now)
local wait = math.max(base - tolerance - now, 0)
if wait > tonumber(ARGV[4]) then
  return {0, fmt(wait), fmt(rate)}
end
redis.call('HSET', KEYS[1], 'tat', fmt(base + interval))
keep(base + interval)
return {1, fmt(wait), fmt(rate)}
