-- Consume and Discard: KEYS code, failures, index, then (Consume) each
-- client scope's failures at this address. ARGV id, hash, refund.
-- Compare-and-delete: only the caller holding the current hash removes the
-- code, so of many callers with the right code exactly one wins.
local code, index = KEYS[1], KEYS[3]
local v = redis.call('HMGET', code, 'h', 'es', 'en')
if v[1] ~= ARGV[2] then return 0 end
redis.call('DEL', code)
redis.call('ZREM', index, member(ARGV[1], v[2], v[3]))
if ARGV[3] == '1' then
  for i = 2, #KEYS do
    if i ~= 3 and tonumber(redis.call('HGET', KEYS[i], 'c') or '0') > 0 then
      redis.call('HINCRBY', KEYS[i], 'c', -1)
    end
  end
end
return 1
