"use strict";
// A second, independent SCIM 2.0 service provider for the tests: SCIMMY does the protocol
// (schemas, filters, PatchOp, list responses, errors) and this file only supplies storage, so
// whatever SCIMMY really does — strict or quirky — is what the provisioner has to cope with.
//
// Usage: node server.js [PORT]   (PORT from argv[2], else env PORT, else 0 = any free port)
// Prints exactly one line "listening <port>" on stdout. Exits when stdin closes or on SIGTERM,
// so a parent that dies without cleaning up leaves no orphan behind.
//
// express stays on 4.x: under Express 5 req.query is re-parsed on every access, so the routers'
// cast of startIndex/count to numbers is lost and SCIMMY silently ignores paging, always
// answering the first 20 (scimmy-routers issue #36).

const crypto = require("node:crypto");
const http = require("node:http");
const express = require("express");
// Both through require() so that the routers and this file share one SCIMMY singleton
// (mixing import and require would load two copies with separate declarations and config).
const SCIMMY = require("scimmy").default;
const {SCIMMYRouters} = require("scimmy-routers");

const {Error: SCIMError, Filter} = SCIMMY.Types;
const TOKEN = process.env.SCIMMY_TOKEN || "scimmy-token";
const PORT = Number(process.argv[2] ?? process.env.PORT ?? 0);

const users = new Map();
const groups = new Map();

// Plain JSON copies, so that stored records are never SCIMMY's frozen schema instances and
// SCIMMY's Filter.match sees ordinary objects, exactly as it would from a database row.
const plain = (value) => JSON.parse(JSON.stringify(value));

function meta(resourceType, previous) {
    const now = new Date().toISOString();
    return {resourceType, created: previous?.meta?.created ?? now, lastModified: now};
}

// Reads go through SCIMMY's own Filter (resource.filter is "id eq ..." for a single resource),
// so filtering — including its case-sensitive string comparison — is SCIMMY's real behaviour.
function egress(store, label) {
    return (resource) => {
        const all = [...store.values()].map(plain);
        const found = resource.filter ? resource.filter.match(all) : all;
        if (resource.id && !found.length) throw new SCIMError(404, null, `${label} ${resource.id} not found`);
        return resource.id ? found[0] : found;
    };
}

function degress(store, label, after = () => {}) {
    return (resource) => {
        if (!store.has(resource.id)) throw new SCIMError(404, null, `${label} ${resource.id} not found`);
        store.delete(resource.id);
        after(resource.id);
    };
}

// Both POST (no id) and PUT/PATCH (id, the whole patched resource) arrive here: store the
// full replacement, keeping the server-owned id and creation time.
function save(store, label, resource, data, check = () => {}) {
    const previous = resource.id ? store.get(resource.id) : undefined;
    if (resource.id && !previous) throw new SCIMError(404, null, `${label} ${resource.id} not found`);
    const record = {...plain(data), id: resource.id ?? crypto.randomUUID(), meta: meta(label, previous)};
    check(record);
    store.set(record.id, record);
    return plain(record);
}

function userIngress(resource, data) {
    return save(users, "User", resource, data, (record) => {
        // Uniqueness judged by SCIMMY's own comparison, so "Ada" and "ada" are different users
        // here just as they are for its filters (a client that lower-cases must look both up).
        const others = [...users.values()].filter((u) => u.id !== record.id);
        if (new Filter({userName: ["eq", record.userName]}).match(others).length)
            throw new SCIMError(409, "uniqueness", `userName "${record.userName}" is already in use`);
    });
}

function groupIngress(resource, data) {
    return save(groups, "Group", resource, data, (record) => {
        // A real service refuses members it does not know rather than storing dangling ids,
        // and keeps membership a set: SCIMMY's PatchOp "add" appends blindly, and RFC 7644
        // §3.5.2.1 says re-adding an existing value changes nothing (so that PATCH answers 204).
        // It also owns display, so fill it from the user when the client leaves it out.
        const seen = new Set();
        const unique = (record.members ?? []).filter((m) => !seen.has(m.value) && seen.add(m.value));
        record.members = unique.map((member) => {
            const user = users.get(member.value);
            if (!user) throw new SCIMError(400, "invalidValue", `member "${member.value}" is not a known User`);
            return {type: "User", ...member, display: member.display ?? user.displayName ?? user.userName};
        });
        if (!record.members.length) delete record.members;
    });
}

// Deleting a user takes it out of every group, as real services do, so that group reads
// never point at a user that no longer exists.
function dropMemberships(userId) {
    for (const group of groups.values()) {
        if (!group.members?.some((m) => m.value === userId)) continue;
        group.members = group.members.filter((m) => m.value !== userId);
        if (!group.members.length) delete group.members;
        group.meta = meta("Group", group);
    }
}

SCIMMY.Resources.declare(SCIMMY.Resources.User.extend(SCIMMY.Schemas.EnterpriseUser, false))
    .ingress(userIngress).egress(egress(users, "User")).degress(degress(users, "User", dropMemberships));
SCIMMY.Resources.declare(SCIMMY.Resources.Group)
    .ingress(groupIngress).egress(egress(groups, "Group")).degress(degress(groups, "Group"));

const routers = new SCIMMYRouters({
    type: "bearer",
    handler: (req) => {
        if (req.get("authorization") !== `Bearer ${TOKEN}`) throw new Error("Missing or invalid bearer token");
    },
    // Without it SCIMMY writes relative meta.location values; the Host header keeps them
    // right for whatever port the parent picked.
    baseUri: (req) => `${req.protocol}://${req.get("host")}`,
});
// After the routers: their constructor announces bulk (and more) as supported.
SCIMMY.Config.set({
    patch: true, filter: {supported: true, maxResults: 200}, bulk: false, etag: false, changePassword: false,
});

const app = express();
app.use(routers);
// The routers already answered 5xx errors before passing them on; only log them here, since
// Express's default handler would otherwise destroy the socket of the response just sent.
app.use((err, req, res, next) => {
    console.error(err);
    if (!res.headersSent) res.status(500).send(new SCIMMY.Messages.Error({status: 500, message: err.message}));
});

const server = http.createServer(app);
server.on("error", (err) => {
    console.error(err.message);
    process.exit(1);
});
server.listen(PORT, "127.0.0.1", () => process.stdout.write(`listening ${server.address().port}\n`));

const stop = () => process.exit(0);
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
// The parent holds our stdin; end of stdin means the parent is gone (or done with us).
process.stdin.on("end", stop).on("close", stop).on("error", stop).resume();
