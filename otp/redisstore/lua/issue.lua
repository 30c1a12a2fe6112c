-- Issue: KEYS code, failures, address issues, client issues, index.
-- ARGV id, hash, issued s n, expires s n, resend s n, retention, now s n,
-- max attempts, failure budget, failure window, address issues, client
-- issues, issue window, max pending, slack ms.
local code, fails, aiss, ciss, index = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id, hash = ARGV[1], ARGV[2]
local now = T(ARGV[10], ARGV[11])
local max_attempts, budget, fwin = tonumber(ARGV[12]), tonumber(ARGV[13]), tonumber(ARGV[14])
local acap, ccap, iwin = tonumber(ARGV[15]), tonumber(ARGV[16]), tonumber(ARGV[17])
local max_pending, slack = tonumber(ARGV[18]), tonumber(ARGV[19])

local n, stop = window(fails, now, fwin)
if n >= budget then return limit('failures', stop or now) end

local old = redis.call('HMGET', code, 'h', 'is', 'in', 'es', 'en', 'rs', 'rn', 'a')
local old_member
if old[1] then
  old_member = member(id, old[4], old[5])
  if before(now, T(old[6], old[7])) then
    if before(now, T(old[4], old[5])) and tonumber(old[8]) < max_attempts then
      return {'existing', old[1], old[2], old[3], old[4], old[5], old[6], old[7], old[8]}
    end
    return limit('resend', T(old[6], old[7]))
  end
end

n, stop = window(aiss, now, iwin)
if n >= acap then return limit('address', stop or now) end
n, stop = window(ciss, now, iwin)
if n >= ccap then return limit('client', stop or now) end

-- The global cap counts live codes other than the one being replaced.
-- Expired entries go first: whole seconds in the past by score, then, only
-- when the cap is reached, the exact check on the current second.
local function others()
  local c = redis.call('ZCARD', index)
  if old_member and redis.call('ZSCORE', index, old_member) then c = c - 1 end
  return c
end
redis.call('ZREMRANGEBYSCORE', index, '-inf', '(' .. now[1])
if others() >= max_pending then
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', index, now[1], now[1])) do
    if not before(now, member_expiry(m)) then redis.call('ZREM', index, m) end
  end
  if others() >= max_pending then
    local first = redis.call('ZRANGE', index, 0, 0)[1]
    if first then return limit('busy', member_expiry(first)) end
    return limit('busy', now)
  end
end

if old_member then redis.call('ZREM', index, old_member) end
local exp, rsd = T(ARGV[5], ARGV[6]), T(ARGV[7], ARGV[8])
redis.call('HSET', code, 'h', hash, 'is', ARGV[3], 'in', ARGV[4],
  'es', ARGV[5], 'en', ARGV[6], 'rs', ARGV[7], 'rn', ARGV[8], 'a', 0)
-- An expired code still answers "expired" for the retention period.
local last = add(exp, tonumber(ARGV[9]))
if before(last, rsd) then last = rsd end
redis.call('PEXPIRE', code, ttl(now, last, slack))
redis.call('ZADD', index, exp[1], member(id, ARGV[5], ARGV[6]))
charge(aiss, now, iwin, slack)
charge(ciss, now, iwin, slack)
return {'stored'}
