/**
 * The Lua that runs inside nginx for the `nginx` router (libnginx-mod-http-lua).
 *
 * Why Lua at all: a graceful `nginx -s reload` closes idle keep-alive connections, and a client
 * that reuses one at that moment gets a reset. Weight steps and org moves must fail no request, so
 * the routing lives in a `lua_shared_dict` (one memory zone shared by every worker, kept across
 * reloads) and is written through a loopback admin server inside the same nginx. Only structural
 * changes (a new upstream, a new port) go through a reload.
 *
 * The shared dict holds each table under its own key, `table:N`, and `gen` = N names the live
 * one. A write stores `table:N` first and then moves `gen`, so the single read of `gen` a request
 * makes is the moment it is routed at: every request that reads the new `gen` uses the new table
 * and none that reads it later uses an older one, which is what keeps an org on one version while
 * it moves. A worker parses a table only when `gen` moved, so the read per request is cheap.
 *
 * A write may also come in two halves, for a fleet that must switch several nginx at one
 * instant: staging stores `table:N` and `staged` = N without touching `gen`; an activation then
 * stores `next` = "N MS", and from MS on (epoch ms, by this host's clock) every request routes
 * by table N. A request reads `next` before `gen`, and the admin side later promotes a due
 * activation (`gen` = N first, then `next` removed), so no request routes by the old table once
 * one has routed by the new. Each worker parses a staged table ahead of its instant.
 *
 * These strings are pasted into `*_by_lua_block { … }` by `renderNginxConfig`. They contain no
 * apostrophes in comments and no nginx `$` variables, so the nginx block parser reads them as-is.
 */

/** Name of the shared dict that holds the live routing table. */
export const ROUTES_DICT = 'cutover_routes';

/**
 * The routing module, run once per config load by `init_by_lua_block` in the master process. It
 * expects a local `settings` table rendered just before it (upstream name per known version, the
 * org header/cookie variables, the structural config hash) and registers itself as `cutover` in
 * `package.loaded`, so the forked workers find it with `require`.
 *
 * It also restores `routes.txt` into the dict when the file is newer than the dict (after a cold
 * start the dict is empty). This is done here, in the master, rather than in init_worker: workers
 * may run as an unprivileged user that cannot read the prefix, while the master runs as whoever
 * started nginx, the same user that wrote the file.
 */
export const ROUTING_MODULE_LUA = String.raw`
local routes = ngx.shared.${ROUTES_DICT}
local M = { settings = settings }
local prepared = nil -- per worker: a staged table parsed ahead of its activation

-- The secrets, read here in the master as it loads the config (workers inherit them, and may
-- run as a user who cannot read the prefix). Never logged.
local function read_secret(name)
  local file = io.open(ngx.config.prefix() .. name, "r")
  if not file then return nil end
  local text = file:read("*l")
  file:close()
  if text == nil or text == "" then return nil end
  return text
end
local admin_secret = read_secret("admin.secret")
local org_key = settings.org_from == "signedCookie" and read_secret("org-cookie.key") or nil

-- Equal strings, in time that depends on their length only.
local function same_secret(given, want)
  if type(given) ~= "string" or want == nil or #given ~= #want then return false end
  local diff = 0
  for i = 1, #want do
    diff = bit.bor(diff, bit.bxor(string.byte(given, i), string.byte(want, i)))
  end
  return diff == 0
end

-- Admin requests carry the secret; without it (or with a wrong one) they are refused and logged.
function M.admin_allowed()
  local given = ngx.req.get_headers()["x-cutover-admin"]
  if same_secret(given, admin_secret) then return true end
  ngx.log(ngx.WARN, "cutover: admin ", ngx.req.get_method(), " ", ngx.var.uri, " from ", ngx.var.remote_addr, " refused: ", given and "wrong secret" or "no secret")
  routes:incr("admin_refused", 1, 0)
  return false
end

local function base64url(bytes)
  return (string.gsub(string.gsub(string.gsub(ngx.encode_base64(bytes), "+", "-"), "/", "_"), "=", ""))
end

-- A signed org cookie 'org.expires.signature': the org when its HMAC verifies and it has not
-- expired; otherwise nil, counted, so the request is routed as one without an org.
local function signed_org(value)
  local org, expires, signature = string.match(value, "^(.+)%.(%d+)%.([A-Za-z0-9_-]+)$")
  if not org or #org > 128 or not string.find(org, "^[A-Za-z0-9][A-Za-z0-9._-]*$") or org_key == nil
    or not same_secret(signature, base64url(ngx.hmac_sha1(org_key, org .. "." .. expires))) then
    routes:incr("org_cookie_forged", 1, 0)
    return nil
  end
  if tonumber(expires) < ngx.time() then
    routes:incr("org_cookie_expired", 1, 0)
    return nil
  end
  return org
end
local cached = nil -- per worker once forked: the parsed table of the generation last seen

local function table_key(generation)
  return string.format("table:%d", generation)
end

-- A version name as the config schema allows it; with known (the admin write), it must also
-- have an upstream in this config.
local function version_error(n, what, version, known)
  if #version > 63 or not string.find(version, "^[a-z0-9][a-z0-9._-]*$") then
    return "line " .. n .. ": invalid version name in " .. what
  end
  if known and not known[version] then
    return "line " .. n .. ": " .. what .. " names version " .. version .. ", which has no upstream in this config"
  end
end

-- Parse and validate a routing table text. Returns the table, or nil and a message that names
-- the line. The same rules as the TypeScript side, so a table is refused before it is stored.
-- known (the upstreams) is given by the admin write only: a worker started on an older config
-- must still route the versions it knows when the live table names one it does not.
function M.parse(text, known)
  local t = { weights = {}, order = {}, orgs = {}, total = 0, unpinned = nil }
  local n, unpinned_seen = 0, false
  -- the appended newline makes the last line end like the others; CR of CRLF counts as space
  for raw in string.gmatch(text .. "\n", "([^\n]*)\n") do
    n = n + 1
    local words = {}
    for w in string.gmatch(raw, "%S+") do words[#words + 1] = w end
    local kind = words[1]
    if kind == nil then
      -- blank line
    elseif kind == "generation" and #words == 2 then
      if t.generation or not string.find(words[2], "^%d+$") then
        return nil, "line " .. n .. ": generation must appear once, as a whole number"
      end
      t.generation = tonumber(words[2])
    elseif kind == "fence" and #words == 2 then
      if t.fence or not string.find(words[2], "^%d+$") then
        return nil, "line " .. n .. ": fence must appear once, as a whole number"
      end
      t.fence = tonumber(words[2])
    elseif kind == "unpinned" and ((#words == 2 and words[2] == "weighted") or (#words == 3 and words[2] == "version")) then
      if unpinned_seen then return nil, "line " .. n .. ": unpinned must appear once" end
      unpinned_seen = true
      if words[3] then
        local err = version_error(n, "unpinned", words[3], known)
        if err then return nil, err end
        t.unpinned = words[3]
      end
    elseif kind == "weight" and #words == 3 then
      local version, share = words[2], tonumber(words[3])
      local err = version_error(n, "weight", version, known)
      if err then return nil, err end
      if t.weights[version] or not share or share ~= share or share < 0 or share > 100 then
        return nil, "line " .. n .. ": weight of " .. version .. " must appear once, between 0 and 100"
      end
      t.weights[version] = share
      t.order[#t.order + 1] = version
      t.total = t.total + share
    elseif kind == "org" and #words == 3 then
      local org, version = words[2], words[3]
      if #org > 128 or not string.find(org, "^[A-Za-z0-9][A-Za-z0-9._-]*$") then
        return nil, "line " .. n .. ": invalid org id"
      end
      local err = version_error(n, "org " .. org, version, known)
      if err then return nil, err end
      if t.orgs[org] then return nil, "line " .. n .. ": org " .. org .. " pinned twice" end
      t.orgs[org] = version
    else
      return nil, "line " .. n .. ": expected generation N, fence N, unpinned weighted, unpinned version VERSION, weight VERSION PERCENT or org ORG VERSION"
    end
  end
  if not t.generation then return nil, "missing generation line" end
  if math.abs(t.total - 100) > 1e-6 then
    return nil, "weights sum to " .. t.total .. ", not 100"
  end
  -- A fixed order (byte order of the names, as the TypeScript side sorts) so that the bucket
  -- an org id hashes to means the same version in every worker, whatever the line order.
  table.sort(t.order)
  return t
end

-- A pending activation: the generation and its instant (epoch ms), or nil.
local function activation()
  local next = routes:get("next")
  if not next then return nil end
  local n, at = string.match(next, "^(%d+) (%d+)$")
  return tonumber(n), tonumber(at)
end

local function now_ms()
  ngx.update_time()
  return ngx.now() * 1000
end

-- The generation requests route by now: an activation whose instant has come, else gen. The
-- activation is read first: it is removed only after gen has been moved to it.
local function effective_gen()
  local n, at = activation()
  if n and now_ms() >= at then return n end
  return routes:get("gen")
end

-- The table of the live generation, parsed at most once per generation per worker. The one
-- read of gen decides the generation; its table was stored before gen pointed at it.
function M.current()
  for _ = 1, 3 do
    local gen = effective_gen()
    if gen == nil then return nil, "no routing table is loaded yet" end
    if cached and cached.generation == gen then return cached end
    if prepared and prepared.generation == gen then
      cached, prepared = prepared, nil
      return cached
    end
    local text = routes:get(table_key(gen))
    if text then
      local t, err = M.parse(text)
      if not t then
        ngx.log(ngx.ERR, "cutover: live routing table is malformed: ", err)
        return nil, "live routing table is malformed: " .. err
      end
      cached = t
      return t
    end
    -- a newer write replaced that generation between the two reads: read gen again
  end
  return nil, "the routing table changed faster than it could be read"
end

-- Walk the cumulative shares in the fixed order; point lies in [0, total).
local function walk(t, point)
  local acc, last = 0, nil
  for i = 1, #t.order do
    local version = t.order[i]
    local share = t.weights[version]
    if share > 0 then
      acc = acc + share
      last = version
      if point < acc then return version end
    end
  end
  return last
end

-- Random weighted pick, for requests that carry no org. total (about 100) absorbs rounding.
function M.pick(t)
  return walk(t, math.random() * t.total)
end

-- Weighted pick by the org id: a stable hash maps the org to a point in [0, 100), so every
-- request of one org lands on the same version for a given table, in every worker.
function M.pick_sticky(t, org)
  local point = (ngx.crc32_long(org) % 1000000) / 10000
  return walk(t, point * t.total / 100)
end

-- The version for a request: a pinned org first, then the unpinned policy for other orgs, and
-- a random weighted pick when the request carries no org.
function M.route(t, org)
  if org == nil then return M.pick(t) end
  return t.orgs[org] or t.unpinned or M.pick_sticky(t, org)
end

-- The org a request belongs to: by the header (which wins over the cookie), the cookie alone,
-- or a signed cookie only; empty means none.
function M.org()
  if settings.org_from == "signedCookie" then
    local value = ngx.var[settings.org_cookie_var]
    if value == nil or value == "" then return nil end
    return signed_org(value)
  end
  local org = settings.org_from ~= "cookie" and ngx.var[settings.org_header_var] or nil
  if (org == nil or org == "") and settings.org_cookie_var then
    org = ngx.var[settings.org_cookie_var]
  end
  if org == "" then return nil end
  return org
end

-- Answer the request with a plain-text body. ngx.exit with 200 ends the whole request (not just
-- the phase) once the body is out; the status already set is the one the client sees.
local function reply(status, body)
  ngx.status = status
  ngx.header["Content-Type"] = "text/plain"
  ngx.print(body)
  return ngx.exit(ngx.HTTP_OK)
end
M.reply = reply

-- Parse the staged table ahead of its instant, so no request waits for the parse at the switch
-- (a worker timer; the table of 10,000 orgs takes milliseconds).
function M.prepare()
  local n = routes:get("staged") or activation()
  if not n or (cached and cached.generation == n) or (prepared and prepared.generation == n) then return end
  local text = routes:get(table_key(n))
  if not text then return end
  local t = M.parse(text)
  if t then prepared = t end
end

-- Make a due activation the live generation: gen first, then next removed, then the old table.
-- Called with the write lock held.
local function promote_due()
  local n, at = activation()
  if not n or now_ms() < at then return end
  local live = routes:get("gen")
  routes:set("gen", n)
  routes:delete("next")
  if routes:get("staged") == n then routes:delete("staged") end
  if live and live ~= n then routes:delete(table_key(live)) end
end

-- The live table text, or nil when none is loaded.
local function live_text()
  for _ = 1, 3 do
    local gen = effective_gen()
    if gen == nil then return nil end
    local text = routes:get(table_key(gen))
    if text then return text end
  end
end

-- Admin: GET answers the live table text, PUT validates and stores a new one.
function M.admin_routes()
  if not M.admin_allowed() then return reply(403, "forbidden\n") end
  local method = ngx.req.get_method()
  if method == "GET" then
    -- A due activation becomes the live generation here when no write holds the lock.
    local n = activation()
    if n and routes:add("lock", true, 5) then
      promote_due()
      routes:delete("lock")
    end
    local text = live_text()
    if not text then return reply(404, "no routing table is loaded yet\n") end
    return reply(200, text)
  end
  if method ~= "PUT" then return reply(405, "use GET or PUT\n") end
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if not body then return reply(400, "empty body, or larger than the admin body buffer\n") end
  local t, err = M.parse(body, settings.upstreams)
  if not t then return reply(400, err .. "\n") end
  -- Workers run handlers in parallel: a short lock makes check-generation-then-store one step,
  -- so two drivers racing cannot both win, and generations only move forward.
  if not routes:add("lock", true, 5) then
    return reply(409, "another routing write is in progress\n")
  end
  promote_due()
  local pending, pending_at = activation()
  if pending then
    routes:delete("lock")
    return reply(409, "generation " .. pending .. " activates at " .. pending_at .. "; write after it\n")
  end
  local staging = ngx.var.arg_stage ~= nil
  local live = routes:get("gen")
  if live and t.generation <= live then
    routes:delete("lock")
    return reply(409, "generation " .. t.generation .. " is not newer than live generation " .. live .. "\n")
  end
  -- A driver's lock hands out ever greater fencing tokens: a table written under an older one
  -- comes from a driver that lost its lock mid-write, and must not undo the newer holder's.
  local live_fence = routes:get("fence")
  if live_fence and t.fence and t.fence < live_fence then
    routes:delete("lock")
    ngx.log(ngx.WARN, "cutover: refused a routing table written under fence ", t.fence, ", older than live fence ", live_fence)
    return reply(409, "stale fence " .. t.fence .. ": the live table was written under fence " .. live_fence .. " by a newer lock holder\n")
  end
  local key = table_key(t.generation)
  -- A generation staged before and never activated is replaced, whichever way this one goes.
  local old_staged = routes:get("staged")
  if old_staged and old_staged ~= t.generation and old_staged ~= live then routes:delete(table_key(old_staged)) end
  routes:delete("staged")
  local ok, serr = routes:safe_set(key, body)
  if ok and staging then
    ok, serr = routes:safe_set("staged", t.generation)
    if ok and t.fence then ok, serr = routes:safe_set("fence", t.fence) end
    if not ok then routes:delete(key) end
    routes:delete("lock")
    if not ok then return reply(507, "shared dict ${ROUTES_DICT} cannot hold the table: " .. serr .. "\n") end
    return reply(200, "staged generation " .. t.generation .. "\n")
  end
  if ok then ok, serr = routes:safe_set("gen", t.generation) end
  if ok and t.fence then ok, serr = routes:safe_set("fence", t.fence) end
  if ok and live then
    routes:delete(table_key(live))
  elseif not ok then
    routes:delete(key)
  end
  routes:delete("lock")
  if not ok then return reply(507, "shared dict ${ROUTES_DICT} cannot hold the table: " .. serr .. "\n") end
  return reply(200, "generation " .. t.generation .. "\n")
end

-- Admin PUT /cutover/activate, body "generation N at MS": the staged generation N routes every
-- request from MS on (epoch ms, by the clock of this host). Answering again for N (a retry whose first
-- answer was lost) is not an error.
function M.admin_activate()
  if not M.admin_allowed() then return reply(403, "forbidden\n") end
  if ngx.req.get_method() ~= "PUT" then return reply(405, "use PUT\n") end
  ngx.req.read_body()
  local n_text, at_text = string.match(ngx.req.get_body_data() or "", "^generation (%d+) at (%d+)%s*$")
  if not n_text then return reply(400, "expected: generation N at EPOCH_MS\n") end
  local n, at = tonumber(n_text), tonumber(at_text)
  if not routes:add("lock", true, 5) then return reply(409, "another routing write is in progress\n") end
  promote_due()
  local pending, pending_at = activation()
  local live, staged = routes:get("gen"), routes:get("staged")
  local answer
  if live == n then
    answer = { 200, "generation " .. n .. " is live\n" }
  elseif pending == n then
    answer = { 200, "generation " .. n .. " activates at " .. pending_at .. "\n" }
  elseif pending then
    answer = { 409, "generation " .. pending .. " activates at " .. pending_at .. "\n" }
  elseif staged ~= n then
    answer = { 409, "generation " .. n .. " is not staged" .. (staged and (" (staged: " .. staged .. ")") or "") .. "\n" }
  else
    local ok, serr = routes:safe_set("next", n_text .. " " .. at_text)
    answer = ok and { 200, "generation " .. n_text .. " activates at " .. at_text .. "\n" } or { 507, "cannot store the activation: " .. serr .. "\n" }
  end
  routes:delete("lock")
  return reply(answer[1], answer[2])
end

-- Cold start: restore the table Cutover last wrote, unless the dict already holds a newer one
-- (a reload keeps the dict, and an admin write may be newer than the file).
local function restore_saved()
  local path = ngx.config.prefix() .. "routes.txt"
  local file = io.open(path, "r")
  if not file then return end
  local text = file:read("*a")
  file:close()
  local t, err = M.parse(text)
  if not t then
    ngx.log(ngx.WARN, "cutover: ignoring ", path, ": ", err)
    return
  end
  local live = routes:get("gen")
  local pending = activation()
  if pending and (not live or pending > live) then live = pending end
  if live and live >= t.generation and routes:get(table_key(live)) then return end
  routes:set(table_key(t.generation), text)
  routes:set("gen", t.generation)
  if t.fence and (routes:get("fence") or 0) < t.fence then routes:set("fence", t.fence) end
  -- the single key a dict held before tables were keyed by generation
  routes:delete("table")
end

package.loaded.cutover = M
restore_saved()
`;

/**
 * Per-worker start: workers are forked from one master and would otherwise share the same
 * math.random sequence, so every worker would make the same "random" picks in lockstep.
 */
export const INIT_WORKER_LUA = String.raw`
math.randomseed(ngx.now() * 1000 + ngx.worker.pid())
-- Staged tables are parsed ahead of their activation instant (see M.prepare).
ngx.timer.every(0.02, function() require("cutover").prepare() end)
`;

/**
 * Access phase of the public server: pinned org, then the unpinned policy, then the weighted
 * pick. With no routing table loaded it answers 503 rather than guessing a version, and so it
 * does when the table routes to a version this worker has no upstream for: a worker still on an
 * older config must never let nginx resolve an unknown upstream name as a host.
 */
export const ACCESS_LUA = String.raw`
local cutover = require("cutover")
local t, err = cutover.current()
if not t then
  return cutover.reply(503, "cutover: " .. err .. "; apply routes with deploy before sending traffic\n")
end
local version = cutover.route(t, cutover.org())
local generation = string.format("%d", t.generation)
ngx.var.cutover_route = version .. " g" .. generation
-- When it was routed, by the clock of this nginx (with exposeRoute): what measures a switch.
ngx.var.cutover_routed_at = string.format("%.3f", ngx.now())
local upstream = cutover.settings.upstreams[version]
if not upstream then
  ngx.log(ngx.ERR, "cutover: routing generation ", generation, " sends a request to version ", version, ", which has no upstream in this worker")
  return cutover.reply(503, "cutover: routing generation " .. generation .. " sends this request to version " .. version .. ", which has no upstream in the config of this nginx worker (a reload has not finished)\n")
end
ngx.var.cutover_backend = upstream
`;

/** Admin `/cutover/routes`: GET reads, PUT writes the routing table. */
export const ADMIN_ROUTES_LUA = String.raw`
require("cutover").admin_routes()
`;

/** Admin `/cutover/activate`: make the staged generation live at an instant. */
export const ADMIN_ACTIVATE_LUA = String.raw`
require("cutover").admin_activate()
`;

/** Admin `/cutover/config`: the hash of the structural config this worker was started with. */
export const ADMIN_CONFIG_LUA = String.raw`
local cutover = require("cutover")
if not cutover.admin_allowed() then return cutover.reply(403, "forbidden\n") end
cutover.reply(200, cutover.settings.config_hash .. "\n")
`;

/** Admin /cutover/stats: counts of refused admin requests and of forged or expired org cookies. */
export const ADMIN_STATS_LUA = String.raw`
local cutover = require("cutover")
if not cutover.admin_allowed() then return cutover.reply(403, "forbidden\n") end
local routes = ngx.shared.${ROUTES_DICT}
local out = {}
for _, key in ipairs({ "admin_refused", "org_cookie_forged", "org_cookie_expired" }) do
  out[#out + 1] = key .. " " .. (routes:get(key) or 0)
end
cutover.reply(200, table.concat(out, "\n") .. "\n")
`;
