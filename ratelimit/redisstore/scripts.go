package redisstore

// The scripts run inside Redis, one per decision, so that reading the
// state, deciding and writing it back are one atomic step and one round
// trip. Redis runs scripts one at a time; no other client sees the state
// between the read and the write.
//
// Both read the clock with TIME inside the script: the Redis clock is the
// one clock that all gateway replicas share. Redis 5 and later replicate
// the effects of a script (the SET it did), not the script, so calling
// TIME before a write is allowed and replicas store the same value.
//
// Numbers in Lua are doubles. Every value here is an integer: a count, or
// microseconds. The methods' checks bound each count and duration the
// scripts are given, and the sums they form from them (a bucket's burst
// intervals plus its maximum delay), by ratelimit.MaxUnits, 2^50; with a
// Unix time in µs (about 2^51 today) added, every value stays below 2^53,
// the largest integer a double holds exactly, so the arithmetic and
// math.floor are exact. Integers are written back with
// string.format('%.0f'), because Lua's tostring keeps only 14 digits and
// a Unix time in microseconds has 16.
//
// The optional last ARGV replaces TIME with a given time, in microseconds
// since the Unix epoch. Only this package's tests pass it (see Store.take
// and Store.count); Take and Count never do.

// takeScript is GCRA: the generic cell rate algorithm. The state is one
// number, the theoretical arrival time (TAT): when the bucket would be
// full again. A request for n tokens pushes the TAT n intervals later; it
// is admitted if the TAT stays within burst intervals of now, or, with a
// maximum delay, within burst intervals plus that delay: a reservation,
// which takes tokens not yet earned and tells the caller to wait until
// the TAT is back within burst intervals of now. Reservations queue up in
// the TAT, so each one waits for the tokens of those before it.
//
// KEYS[1]: the bucket's key.
// ARGV: interval (µs), burst, n, max delay (µs, 0 for none), [now (µs), tests only].
// Returns {allowed (0 or 1), remaining, reset (µs), retry after (µs), delay (µs)}.
const takeScript = `
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local max_delay = tonumber(ARGV[4])
local now
if ARGV[5] then
  now = tonumber(ARGV[5])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local tolerance = interval * burst
local tat = now
local stored = redis.call('GET', KEYS[1])
if stored then
  tat = math.max(tonumber(stored), now)
end

local next_tat = tat + n * interval
local allowed, retry, delay = 0, 0, 0
if next_tat - now <= tolerance + max_delay then
  allowed = 1
  delay = math.max(0, next_tat - now - tolerance)
  if n > 0 then
    tat = next_tat
    -- The key lives until the bucket is full again: after that, a missing
    -- key and the stored TAT mean the same thing.
    local ttl = math.max(1, math.ceil((tat - now) / 1000))
    redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', ttl)
  end
else
  -- Refused, as without a maximum delay: the time until the n tokens are
  -- earned, not the (earlier) time a reservation would be admitted.
  retry = next_tat - now - tolerance
end

-- While reservations are queued the TAT lies more than burst intervals
-- ahead, and no whole token is left.
local remaining = math.floor((tolerance - (tat - now)) / interval)
if remaining < 0 then
  remaining = 0
end
return {allowed, remaining, tat - now, retry, delay}
`

// countScript is a fixed-window counter. The window is found from the
// Redis clock: fixed lengths are aligned to the Unix epoch, months are
// calendar months in UTC. Each window has its own key, named after its
// start, so a new window starts from zero without reading the old one, and
// the key expires shortly after its window ends.
//
// KEYS[1]: the key of the counter without the window start; the script
// appends ":<start in Unix seconds>". The full key is not declared in
// KEYS, which Redis Cluster allows because it shares KEYS[1]'s hash tag
// and so its slot (see the package comment).
// ARGV: limit, n, window length (s; 0 for calendar months), [now (µs), tests only].
// Returns {allowed (0 or 1), remaining, reset (µs), retry after (µs)}.
const countScript = `
local limit = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local length = tonumber(ARGV[3])
local now
if ARGV[4] then
  now = tonumber(ARGV[4])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local day = 86400000000 -- µs
local start, finish
if length > 0 then
  local len = length * 1000000
  start = now - now % len
  finish = start + len
else
  local function leap(y)
    return (y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0
  end
  -- Days from 1970-01-01 to January 1st of year y: 365 a year plus one
  -- for each leap year before y, less the 477 leap years before 1970.
  local function year_start(y)
    local p = y - 1
    return 365 * (y - 1970) + math.floor(p / 4) - math.floor(p / 100) + math.floor(p / 400) - 477
  end
  local days = math.floor(now / day)
  -- Estimate the year, then correct the estimate by at most a step or two.
  local y = 1970 + math.floor(days / 365.2425)
  while year_start(y) > days do
    y = y - 1
  end
  while year_start(y + 1) <= days do
    y = y + 1
  end
  local lengths = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}
  if leap(y) then
    lengths[2] = 29
  end
  local first = year_start(y)
  for m = 1, 12 do
    if days < first + lengths[m] then
      start, finish = first * day, (first + lengths[m]) * day
      break
    end
    first = first + lengths[m]
  end
end

local key = KEYS[1] .. ':' .. string.format('%.0f', start / 1000000)
local count = tonumber(redis.call('GET', key) or '0')
local allowed, retry = 0, 0
if count + n <= limit then
  allowed = 1
  if n > 0 then
    count = redis.call('INCRBY', key, ARGV[2])
    if count == n then
      -- A new window: let the key outlive its window by a second, so that
      -- a small step back of the Redis clock cannot find it gone and
      -- count the window again from zero.
      redis.call('PEXPIRE', key, math.ceil((finish - now) / 1000) + 1000)
    end
  end
else
  retry = finish - now
end

local remaining = limit - count
if remaining < 0 then
  remaining = 0
end
return {allowed, remaining, finish - now, retry}
`
