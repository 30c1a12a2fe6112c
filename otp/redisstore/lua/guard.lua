-- The deadline guard (prepended by redisstore.go after lib.lua). Each
-- script's body runs as guarded(function() <body> end), so no body needs a
-- line of its own for it.
--
-- The last ARGV is the caller's deadline in microseconds of the server's
-- own clock (TIME), computed by the caller from its measured offset to this
-- server. A call that reaches the server after it (the server was stalled,
-- or the call queued behind others) answers 'late' and changes nothing: the
-- caller has already reported a failure, so taking effect now would leave,
-- say, a code that was never mailed. Bodies read ARGV by fixed positions,
-- so the extra argument at the end is invisible to them.
--
-- Every reply carries the server's TIME, from which the caller keeps its
-- offset estimate current: {'late', s, us} or {'done', s, us, result}.
-- Calling TIME makes the script non-deterministic, which Redis 5 and later
-- allow by replicating its effects rather than the script.
local function guarded(body)
  local t = redis.call('TIME')
  if tonumber(t[1]) * 1e6 + tonumber(t[2]) >= tonumber(ARGV[#ARGV]) then
    return {'late', t[1], t[2]}
  end
  return {'done', t[1], t[2], body()}
end
