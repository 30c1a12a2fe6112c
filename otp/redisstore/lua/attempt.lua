-- Attempt: KEYS code, failures, index.
-- ARGV id, now s n, max attempts, failure budget, failure window, slack ms.
local code, fails, index = KEYS[1], KEYS[2], KEYS[3]
local now = T(ARGV[2], ARGV[3])
local max_attempts, budget, fwin, slack =
  tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])

local v = redis.call('HMGET', code, 'h', 'is', 'in', 'es', 'en', 'rs', 'rn', 'a')
if not v[1] then return {'nocode'} end
if not before(now, T(v[4], v[5])) then return {'expired'} end
if tonumber(v[8]) >= max_attempts then return {'toomany'} end
local n, stop = window(fails, now, fwin)
if n >= budget then return limit('failures', stop or now) end

local a = redis.call('HINCRBY', code, 'a', 1)
charge(fails, now, fwin, slack)
-- A code on its last attempt is no longer live for the global cap; if this
-- attempt matches, Consume removes the code itself.
if a >= max_attempts then redis.call('ZREM', index, member(ARGV[1], v[4], v[5])) end
return {'ok', v[1], v[2], v[3], v[4], v[5], v[6], v[7], a}
