-- Shared by every script (prepended by redisstore.go).
--
-- Times travel as two numbers, Unix seconds and nanoseconds: Lua numbers are
-- doubles, exact only up to 2^53, which Unix nanoseconds exceed. Durations
-- are nanoseconds (below 2^53, about 104 days).
local function T(s, n) return {tonumber(s), tonumber(n)} end

local function before(a, b)
  return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2])
end

-- Durations of the global rate's windows, in ns.
local SECOND, HOUR = 1e9, 3600e9

local function add(t, d)
  local n = t[2] + d
  local r = math.fmod(n, 1e9)
  return {t[1] + (n - r) / 1e9, r}
end

-- later is the later of a (which may be nil) and b.
local function later(a, b)
  if a == nil or before(a, b) then return b end
  return a
end

-- ttl is the key lifetime in ms from now until t, plus slack for clock skew
-- between replicas. Decisions never read it: Redis expiry only collects
-- garbage, so a fake clock in tests is as good as a real one.
local function ttl(now, t, slack)
  local ms = math.ceil((t[1] - now[1]) * 1000 + (t[2] - now[2]) / 1e6) + slack
  if ms < 1 then return 1 end
  return ms
end

-- A fixed window is a hash {s, n: start; c: count}; it closes d after its
-- start. window returns the count and the end of the window open at now, or
-- 0 and nil when none is open.
local function window(key, now, d)
  local v = redis.call('HMGET', key, 's', 'n', 'c')
  if not v[1] then return 0, nil end
  local stop = add(T(v[1], v[2]), d)
  if not before(now, stop) then return 0, nil end
  return tonumber(v[3]), stop
end

-- charge counts one event in the window open at now, opening one if needed.
local function charge(key, now, d, slack)
  local _, stop = window(key, now, d)
  if stop then
    redis.call('HINCRBY', key, 'c', 1)
  else
    stop = add(now, d)
    redis.call('HSET', key, 's', now[1], 'n', now[2], 'c', 1)
  end
  redis.call('PEXPIRE', key, ttl(now, stop, slack))
end

-- A pending code is indexed in a sorted set scored by its expiry second;
-- the member carries the exact expiry so the index alone can tell a live
-- code from a dead one.
local function member(id, es, en) return id .. ':' .. es .. ':' .. en end

local function member_expiry(m)
  local s, n = string.match(m, ':(%d+):(%d+)$')
  return T(s, n)
end

-- limit is the reply for a limit that refuses until t.
local function limit(kind, t) return {'limit', kind, t[1], t[2]} end
