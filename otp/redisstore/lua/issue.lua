-- Issue: KEYS code, failures, address issues, index, global second, global
-- hour, then per client scope: client issues, the scope's failures at this
-- address, the scope's issues to this address.
-- ARGV id, hash, issued s n, expires s n, resend s n, retention, now s n,
-- max attempts, failure budget, failure window, address issues, issue
-- window, max pending, slack ms, issues a second, issues an hour, scope
-- count, then per scope: client issues, address issues, failures.
local code, fails, aiss, index, gsec, ghour =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local id, hash = ARGV[1], ARGV[2]
local now = T(ARGV[10], ARGV[11])
local max_attempts, budget, fwin = tonumber(ARGV[12]), tonumber(ARGV[13]), tonumber(ARGV[14])
local acap, iwin, max_pending, slack =
  tonumber(ARGV[15]), tonumber(ARGV[16]), tonumber(ARGV[17]), tonumber(ARGV[18])
local per_second, per_hour, nscopes = tonumber(ARGV[19]), tonumber(ARGV[20]), tonumber(ARGV[21])

-- Scope i's keys and caps.
local function scope_key(i, k) return KEYS[6 + 3 * (i - 1) + k] end
local function scope_cap(i, k) return tonumber(ARGV[21 + 3 * (i - 1) + k]) end
local CLIENT, SHARE_FAILS, SHARE_ISSUES = 1, 2, 3 -- key offsets
local CLIENT_CAP, SHARE_ISSUES_CAP, SHARE_FAILS_CAP = 1, 2, 3 -- cap offsets

-- over returns the latest end among the scopes whose counter k is at its
-- cap c, or nil.
local function over(k, c, d)
  local latest
  for i = 1, nscopes do
    local n, stop = window(scope_key(i, k), now, d)
    if n >= scope_cap(i, c) then latest = later(latest, stop or now) end
  end
  return latest
end

local n, stop = window(fails, now, fwin)
if n >= budget then return limit('failures', stop or now) end
local t = over(SHARE_FAILS, SHARE_FAILS_CAP, fwin)
if t then return limit('failures', t) end

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
t = over(SHARE_ISSUES, SHARE_ISSUES_CAP, iwin)
if t then return limit('address', t) end
t = over(CLIENT, CLIENT_CAP, iwin)
if t then return limit('client', t) end

n, stop = window(gsec, now, SECOND)
if n >= per_second then return limit('rate', stop or now) end
n, stop = window(ghour, now, HOUR)
if n >= per_hour then return limit('rate', stop or now) end

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
for i = 1, nscopes do
  charge(scope_key(i, CLIENT), now, iwin, slack)
  charge(scope_key(i, SHARE_ISSUES), now, iwin, slack)
end
charge(gsec, now, SECOND, slack)
charge(ghour, now, HOUR, slack)
return {'stored'}
