#!/usr/bin/env python3
"""The tail-rewrite attack of issue 23 (finding 3), as someone who can write the store file but
cannot read the signing key would run it: edit the newest flag.decide entry's reason, re-hash
its leaf, the chain after it and every Merkle node over it, and update the decision row to
match. `custos audit verify` must name it (the signed head no longer covers the entries).

usage: rewrite-tail.py STORE.db [NEW REASON]
"""
import hashlib, json, sqlite3, sys

db, reason = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "forged reason")
con = sqlite3.connect(db)
triggers = con.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN ('custody', 'merkle_nodes', 'decisions')").fetchall()
for t, _ in triggers:
    con.execute(f'DROP TRIGGER "{t}"')
seq, details = con.execute("SELECT seq, details FROM custody WHERE action = 'flag.decide' ORDER BY seq DESC LIMIT 1").fetchone()
d = json.loads(details)
old = d["reason"]
d["reason"] = reason
canon = lambda v: json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
con.execute("UPDATE custody SET details = ? WHERE seq = ?", (canon(d), seq))
con.execute("UPDATE decisions SET reason = ? WHERE reason = ?", (reason, old))
# Leaves and chain from the edited entry on.
cols = "seq, at, actor, os_user, action, subject_type, subject_id, details, evidence_hash, auth"
chain = bytes(32) if seq == 0 else con.execute("SELECT chain_hash FROM custody WHERE seq = ?", (seq - 1,)).fetchone()[0]
for row in con.execute(f"SELECT {cols} FROM custody WHERE seq >= ? ORDER BY seq", (seq,)).fetchall():
    s, at, actor, os_user, action, st, sid, det, ev, auth = row
    # RFC 8785 member order; details embedded as stored.
    j = lambda v: json.dumps(v, ensure_ascii=False)
    text = '{"action":%s,"actor":%s,"at":%s' % (j(action), j(actor), j(at))
    if auth is not None: text += ',"auth":%s' % j(auth)
    text += ',"details":%s' % det
    if ev is not None: text += ',"evidence_hash":%s' % j(ev)
    text += ',"os_user":%s,"seq":%d,"subject_id":%s,"subject_type":%s}' % (j(os_user), s, j(sid), j(st))
    leaf = hashlib.sha256(b"\x00" + text.encode()).digest()
    chain = hashlib.sha256(chain + leaf).digest()
    con.execute("UPDATE custody SET leaf_hash = ?, chain_hash = ? WHERE seq = ?", (leaf, chain, s))
# Every stored Merkle node, recomputed from the leaves.
leaves = [r[0] for r in con.execute("SELECT leaf_hash FROM custody ORDER BY seq")]
level, nodes = 0, leaves
while len(nodes) > 1:
    nodes = [hashlib.sha256(b"\x01" + nodes[i] + nodes[i + 1]).digest() for i in range(0, len(nodes) - 1, 2)]
    level += 1
    for i, h in enumerate(nodes):
        con.execute("UPDATE merkle_nodes SET hash = ? WHERE level = ? AND idx = ?", (h, level, i))
for _, sql in triggers:  # put back as they were: the schema is what the migrations made
    con.execute(sql)
con.commit()
print(f"entry {seq}: reason {old!r} -> {reason!r}; leaves, chain and Merkle nodes re-hashed")
