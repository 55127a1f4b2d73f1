-- page.lua: the next page of a batch's row records, bounded in row numbers and in bytes.
--
-- KEYS[1]  rows hash            <prefix>:b:<bid>:rows
-- ARGV[1]  first row number to read
-- ARGV[2]  last row number to read (inclusive; the caller's block of row numbers)
-- ARGV[3]  byte budget: the page ends once its records reach it (one record at least, so
--          a page is at most the budget plus one record)
--
-- Returns {next, n1, r1, n2, r2, ...}: the row number to read next (ARGV[2] + 1 once the
-- block is done), then each row number found with its JSON record, in row order.
-- Read-only: it runs while Redis refuses writes (MISCONF) as well.

local n, last, budget = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local out, size = {0}, 0
while n <= last and size < budget do
  local raw = redis.call('HGET', KEYS[1], string.format('%d', n))
  if raw then
    out[#out + 1] = n
    out[#out + 1] = raw
    size = size + #raw
  end
  n = n + 1
end
out[1] = n
return out
