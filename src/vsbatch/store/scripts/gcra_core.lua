-- gcra_core.lua: the fleet-wide rate limiter's arithmetic as one function, included by
-- gcra.lua (its own script) and claim_row.lua (a row's first slot, taken with its claim).
-- ``gcra(K, A)`` takes the tables gcra.lua gets as KEYS and ARGV (below) and returns its reply.
--
-- The limiter for one Stripe account is GCRA with reservations, adaptive by AIMD: a 429 cuts
-- the rate multiplicatively, which then climbs back additively.
-- Time is Redis server time, so every worker on every machine agrees on it.
--
-- KEYS[1]  state hash <prefix>:rl:<account>, fields (times in ms since the epoch):
--            tat  theoretical arrival time of the next free slot
--            pr   rate right after the last cut (requests/s); the rate climbs from it
--            pt   time of the last cut
--            p0   start of the penalty window (the first cut of the current overload)
--            pw   rate that drew the window's first 429 (requests/s)
--            pf   share of pw kept by the window's first cut
--            pk   cuts in the window (429s of requests reserved after a cut)
--            ps   streak: windows opened while still climbing back (0..3)
-- ARGV[1]  operation: "reserve" | "penalize" | "rate"
-- ARGV[2]  configured rate, requests/s (> 0): the ceiling
-- ARGV[3]  burst, requests (>= 1): how many may go at once after an idle spell
-- ARGV[4]  max wait, ms: a reservation further away than this is not made
-- ARGV[5]  probe: the additive increase, as a share of pw per second (halved per streak)
-- ARGV[6]  minimum rate after penalties, requests/s
-- ARGV[7]  penalty window, ms: cuts closer to the window's first belong to one overload
-- ARGV[8]  backoff: share of the rate kept per 429 (0 < b < 1)
-- ARGV[9]  penalize only: when the 429'd request's slot was reserved (ms), or "" if unknown;
--          a request reserved before the last cut was sent at the old rate (in flight), so
--          its 429 is already answered by that cut and cuts nothing
-- ARGV[10] the deepest single cut, as the share of the rate kept (DEEPEST_CUT in rate_limit.py)
-- ARGV[11] the highest streak level (MAX_STREAK)
-- ARGV[12] the share of the configured rate that counts as "at the ceiling" (AT_CEILING)
-- KEYS[2], ARGV[13], ARGV[14]  reserve only, optional: a session lock, the caller's token and
--          the lock's time to live (ms). The slot is taken only while the lock holds the token
--          (and its TTL is reset): the fence a worker checks before each send, in the same
--          round trip as its slot. Code -1 (nothing taken) when the lock was lost.
--
-- Returns {code, wait_ms, rate, slot_ms} as decimal strings:
--   reserve:  code 1, the wait before sending and the slot's server time (the slot is
--             taken), or code 0 and the wait it would have needed (nothing taken), or code
--             -1 when the fence's lock no longer holds the token (nothing taken);
--   penalize: code 2 and the rate after the cut;  rate: code 2 and the current rate.

local function gcra(K, A)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
  local op = A[1]
  local cfg = tonumber(A[2])
  local probe = tonumber(A[5])
  local window = tonumber(A[7])
  local backoff = tonumber(A[8])
  local deepest, max_streak, at_ceiling = tonumber(A[10]), tonumber(A[11]), tonumber(A[12])
  local s = redis.call('HMGET', K[1], 'tat', 'pr', 'pt', 'p0', 'pw', 'pf', 'pk', 'ps')
  local tat = tonumber(s[1]) or 0
  local pr, pt, p0 = tonumber(s[2]), tonumber(s[3]), tonumber(s[4])
  local pw, pf = tonumber(s[5]) or cfg, tonumber(s[6]) or backoff
  local pk, streak = tonumber(s[7]) or 0, tonumber(s[8]) or 0

  -- Additive increase: +probe*pw requests/s per second since the last cut, up to the ceiling;
  -- each streak level halves the slope (the limit is below the ceiling: probe it gently).
  local slope = probe * pw / 2 ^ streak
  local rate = cfg
  if pr and pt then
    rate = math.min(cfg, pr + slope * math.max(now - pt, 0) / 1000)
  end

  local function fmt(x) return string.format('%.3f', x) end
  local function keep(until_ms)
    -- Long enough to climb back from the floor after the last slot.
    local climb = slope > 0 and cfg / slope * 1000 or 0
    redis.call('PEXPIRE', K[1], math.ceil(math.max(until_ms - now, 0) + climb + 1000))
  end

  if op == 'penalize' then
    local reserved = tonumber(A[9])
    if pt and reserved and reserved <= pt then
      return {2, '0', fmt(rate), '0'}
    end
    -- Multiplicative decrease. Inside a window each 429 keeps another `backoff` of pw, never
    -- below half of it: one stray 429 costs 15 %, a real overload halves. A window opened
    -- while still climbing means the ceiling is above the real limit: halve at once.
    local floor = math.min(tonumber(A[6]), cfg)
    if p0 and now - p0 < window then
      pk = pk + 1
    else
      local full = rate >= cfg * at_ceiling
      streak = full and 0 or math.min(streak + 1, max_streak)
      pw, pk, p0 = rate, 1, now
      pf = full and backoff or deepest
    end
    rate = math.max(floor, pw * math.max(deepest, pf * backoff ^ (pk - 1)))
    redis.call('HSET', K[1], 'pr', fmt(rate), 'pt', fmt(now), 'p0', fmt(p0), 'pw', fmt(pw),
      'pf', fmt(pf), 'pk', tostring(pk), 'ps', tostring(streak))
    slope = probe * pw / 2 ^ streak
    keep(tat)
    return {2, '0', fmt(rate), '0'}
  elseif op == 'rate' then
    return {2, '0', fmt(rate), '0'}
  end

  if K[2] then
    if redis.call('GET', K[2]) ~= A[13] then
      return {-1, '0', fmt(rate), '0'}
    end
    redis.call('PEXPIRE', K[2], A[14])
  end

  local interval = 1000 / rate
  local tolerance = (tonumber(A[3]) - 1) * interval
  local base = math.max(tat, now)
  local wait = math.max(base - tolerance - now, 0)
  if wait > tonumber(A[4]) then
    return {0, fmt(wait), fmt(rate), '0'}
  end
  redis.call('HSET', K[1], 'tat', fmt(base + interval))
  keep(base + interval)
  return {1, fmt(wait), fmt(rate), fmt(now + wait)}
end
