-- Consume and Discard: KEYS code, failures, index. ARGV id, hash, refund.
-- Compare-and-delete: only the caller holding the current hash removes the
-- code, so of many callers with the right code exactly one wins.
local code, fails, index = KEYS[1], KEYS[2], KEYS[3]
local v = redis.call('HMGET', code, 'h', 'es', 'en')
if v[1] ~= ARGV[2] then return 0 end
redis.call('DEL', code)
redis.call('ZREM', index, member(ARGV[1], v[2], v[3]))
if ARGV[3] == '1' and tonumber(redis.call('HGET', fails, 'c') or '0') > 0 then
  redis.call('HINCRBY', fails, 'c', -1)
end
return 1
