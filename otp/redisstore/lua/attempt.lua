-- Attempt: KEYS code, failures, then each client scope's failures at this
-- address.
-- ARGV now s n, max attempts, failure budget, failure window, slack ms,
-- then each scope's failure cap.
-- Charging the attempt and the failures in the same step as the checks is
-- what keeps parallel guesses within the limits.
local code, fails = KEYS[1], KEYS[2]
local now = T(ARGV[1], ARGV[2])
local max_attempts, budget, fwin, slack =
  tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])

local v = redis.call('HMGET', code, 'h', 'is', 'in', 'es', 'en', 'rs', 'rn', 'a')
if not v[1] then return {'nocode'} end
if not before(now, T(v[4], v[5])) then return {'expired'} end
if tonumber(v[8]) >= max_attempts then return {'toomany'} end
local n, stop = window(fails, now, fwin)
if n >= budget then return limit('failures', stop or now) end
local latest
for i = 3, #KEYS do
  n, stop = window(KEYS[i], now, fwin)
  if n >= tonumber(ARGV[4 + i]) then latest = later(latest, stop or now) end
end
if latest then return limit('failures', latest) end

local a = redis.call('HINCRBY', code, 'a', 1)
charge(fails, now, fwin, slack)
for i = 3, #KEYS do charge(KEYS[i], now, fwin, slack) end
return {'ok', v[1], v[2], v[3], v[4], v[5], v[6], v[7], a}
