-- gcra.lua: the fleet-wide rate limiter for one Stripe account; the arithmetic and the
-- meaning of KEYS and ARGV are in gcra_core.lua.

--#include gcra_core.lua

return gcra(KEYS, ARGV)
