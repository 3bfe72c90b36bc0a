/**
 * The Lua that runs inside nginx for the `nginx` router (libnginx-mod-http-lua).
 *
 * Why Lua at all: a graceful `nginx -s reload` closes idle keep-alive connections, and a client
 * that reuses one at that moment gets a reset. Weight steps and org moves must fail no request, so
 * the routing lives in a `lua_shared_dict` (one memory zone shared by every worker, kept across
 * reloads) and is written through a loopback admin server inside the same nginx. Only structural
 * changes (a new upstream, a new port) go through a reload.
 *
 * The shared dict holds two keys, written in this order: `table` (the routing table text, which
 * names its own generation) and then `gen`. A worker reads `gen` on every request (cheap) and
 * parses `table` only when `gen` moved, so a worker never mixes two generations in one decision.
 *
 * These strings are pasted into `*_by_lua_block { … }` by `renderNginxConfig`. They contain no
 * apostrophes in comments and no nginx `$` variables, so the nginx block parser reads them as-is.
 */

/** Name of the shared dict that holds the live routing table. */
export const ROUTES_DICT = 'cutover_routes';

/**
 * The routing module, run once per config load by `init_by_lua_block` in the master process. It
 * expects a local `settings` table rendered just before it (upstream name per version, the org
 * header/cookie variables, the structural config hash) and registers itself as `cutover` in
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
local cached = nil -- per worker once forked: the parsed table of the generation last seen

-- Parse and validate a routing table text. Returns the table, or nil and a message that names
-- the line. The same rules as the TypeScript side, so a table is refused before it is stored.
function M.parse(text)
  local t = { weights = {}, order = {}, orgs = {}, total = 0 }
  local n = 0
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
    elseif kind == "weight" and #words == 3 then
      local version, share = words[2], tonumber(words[3])
      if not settings.upstreams[version] then
        return nil, "line " .. n .. ": unknown version " .. string.sub(version, 1, 64)
      end
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
      if not settings.upstreams[version] then
        return nil, "line " .. n .. ": org " .. org .. " pinned to unknown version " .. string.sub(version, 1, 64)
      end
      if t.orgs[org] then return nil, "line " .. n .. ": org " .. org .. " pinned twice" end
      t.orgs[org] = version
    else
      return nil, "line " .. n .. ": expected generation N, weight VERSION PERCENT or org ORG VERSION"
    end
  end
  if not t.generation then return nil, "missing generation line" end
  if math.abs(t.total - 100) > 1e-6 then
    return nil, "weights sum to " .. t.total .. ", not 100"
  end
  return t
end

-- The table of the live generation, parsed at most once per generation per worker.
function M.current()
  local gen = routes:get("gen")
  if gen == nil then return nil, "no routing table is loaded yet" end
  if cached and cached.generation == gen then return cached end
  -- table is written before gen, so it is at least as new as the gen just read; the table
  -- carries its own generation, which becomes the cache key.
  local t, err = M.parse(routes:get("table") or "")
  if not t then
    ngx.log(ngx.ERR, "cutover: live routing table does not fit this config: ", err)
    return nil, "live routing table does not fit this config: " .. err
  end
  cached = t
  return t
end

-- Weighted pick over the cumulative shares; total (about 100) absorbs float rounding.
function M.pick(t)
  local r = math.random() * t.total
  local acc, last = 0, nil
  for i = 1, #t.order do
    local version = t.order[i]
    local share = t.weights[version]
    if share > 0 then
      acc = acc + share
      last = version
      if r < acc then return version end
    end
  end
  return last
end

-- The org a request belongs to: the header wins over the cookie, empty means none.
function M.org()
  local org = ngx.var[settings.org_header_var]
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

-- Admin: GET answers the live table text, PUT validates and stores a new one.
function M.admin_routes()
  local method = ngx.req.get_method()
  if method == "GET" then
    local text = routes:get("table")
    if not text then return reply(404, "no routing table is loaded yet\n") end
    return reply(200, text)
  end
  if method ~= "PUT" then return reply(405, "use GET or PUT\n") end
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if not body then return reply(400, "empty body, or larger than the admin body buffer\n") end
  local t, err = M.parse(body)
  if not t then return reply(400, err .. "\n") end
  -- Workers run handlers in parallel: a short lock makes check-generation-then-store one step,
  -- so two drivers racing cannot both win, and generations only move forward.
  if not routes:add("lock", true, 5) then
    return reply(409, "another routing write is in progress\n")
  end
  local live = routes:get("gen")
  if live and t.generation <= live then
    routes:delete("lock")
    return reply(409, "generation " .. t.generation .. " is not newer than live generation " .. live .. "\n")
  end
  local ok, serr = routes:safe_set("table", body)
  if ok then ok, serr = routes:safe_set("gen", t.generation) end
  routes:delete("lock")
  if not ok then return reply(507, "shared dict ${ROUTES_DICT} cannot hold the table: " .. serr .. "\n") end
  return reply(200, "generation " .. t.generation .. "\n")
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
  if live and live >= t.generation then return end
  routes:set("table", text)
  routes:set("gen", t.generation)
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
`;

/**
 * Access phase of the public server: pinned org first, then the weighted pick. With no routing
 * table loaded it answers 503 rather than guessing a version.
 */
export const ACCESS_LUA = String.raw`
local cutover = require("cutover")
local t, err = cutover.current()
if not t then
  return cutover.reply(503, "cutover: " .. err .. "; apply routes with deploy before sending traffic\n")
end
local org = cutover.org()
local version = (org and t.orgs[org]) or cutover.pick(t)
ngx.var.cutover_backend = cutover.settings.upstreams[version]
ngx.var.cutover_route = version .. " g" .. string.format("%d", t.generation)
`;

/** Admin `/cutover/routes`: GET reads, PUT writes the routing table. */
export const ADMIN_ROUTES_LUA = String.raw`
require("cutover").admin_routes()
`;

/** Admin `/cutover/config`: the hash of the structural config this worker was started with. */
export const ADMIN_CONFIG_LUA = String.raw`
local cutover = require("cutover")
cutover.reply(200, cutover.settings.config_hash .. "\n")
`;
